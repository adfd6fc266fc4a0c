"""One governed boto3 call in its own process, as an agent makes it: ascend_boto3 over
real boto3 against moto. Prints one JSON line with the outcome and exits 0; the browser
test reads it. Usage: agent.py ASCEND_URL API_KEY AGENT_ID MOTO_URL OPERATION BUCKET"""

import json
import sys

import ascend_boto3
import boto3
from ascend_boto3 import GovernanceDenied


def main() -> None:
    url, key, agent_id, moto_url, operation, bucket = sys.argv[1:7]
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    if operation == "delete_bucket":
        s3.create_bucket(Bucket=bucket)  # setup, before governance is on
    ascend_boto3.enable_governance(
        api_key=key,
        base_url=url,
        agent_id=agent_id,
        agent_name="E2E Agent",
        approval_timeout=90,
    )
    print(json.dumps({"state": "calling"}), flush=True)
    try:
        if operation == "delete_bucket":
            s3.delete_bucket(Bucket=bucket)
        else:
            s3.list_buckets()
        outcome = {"outcome": "ran"}
    except GovernanceDenied as denied:
        outcome = {
            "outcome": "denied",
            "reason": denied.reason,
            "action_id": denied.action_id,
        }
    ascend_boto3.disable_governance()
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    outcome["bucket_exists"] = bucket in names
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
