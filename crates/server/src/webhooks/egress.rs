//! Where a delivery may go. A webhook URL is chosen by an administrator, but the
//! dispatcher runs inside the platform's network, so a URL must not reach what only the
//! platform's host can: the cloud instance-metadata service (AWS, GCP, Azure answer on
//! link-local `169.254.169.254`, `fd00:ec2::254`) or "this host" (`0.0.0.0`, `::`).
//! Loopback and private addresses stay allowed: on-premises receivers (and this project's
//! tests) live there.
//!
//! Checked twice: a literal address when the URL is registered and again when it is
//! posted (rows stored before this check), and every address a host name resolves to, by
//! the dispatcher's resolver, when it connects: a name that resolves only to forbidden
//! addresses fails the attempt with the reason in the delivery log.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Host names of metadata services that are not addresses.
const METADATA_NAMES: &[&str] = &["metadata.google.internal", "metadata.goog", "metadata"];

/// AWS's IPv6 instance-metadata endpoint (outside link-local).
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Why a delivery may not go to `ip`, if it may not.
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    };
    if link_local {
        Some("a link-local address (the cloud metadata service lives there)")
    } else if ip.is_unspecified() {
        Some("the unspecified address (this host)")
    } else if ip == IpAddr::V6(AWS_METADATA_V6) {
        Some("the cloud metadata service")
    } else {
        None
    }
}

/// Why a delivery may not go to the URL's host, judged without resolving it.
pub fn forbidden_host(host: &url::Host<&str>) -> Option<&'static str> {
    match host {
        url::Host::Ipv4(v4) => forbidden_ip(IpAddr::V4(*v4)),
        url::Host::Ipv6(v6) => forbidden_ip(IpAddr::V6(*v6)),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            METADATA_NAMES
                .contains(&name.as_str())
                .then_some("the cloud metadata service")
        }
    }
}

/// The system resolver, minus the addresses a delivery may not reach.
#[derive(Debug, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| forbidden_ip(a.ip()).is_none())
                .collect();
            if allowed.is_empty() && !found.is_empty() {
                let why = forbidden_ip(found[0].ip()).unwrap_or("a forbidden address");
                return Err(format!("`{host}` resolves to {why}; not delivered").into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_this_host_are_forbidden_the_rest_is_not() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(forbidden_ip(bad.parse().unwrap()).is_some(), "{bad}");
        }
        for good in [
            "127.0.0.1",
            "10.0.0.5",
            "192.168.1.1",
            "::1",
            "8.8.8.8",
            "fd00::1",
        ] {
            assert!(forbidden_ip(good.parse().unwrap()).is_none(), "{good}");
        }
        let host = |u: &str| {
            let url = url::Url::parse(u).unwrap();
            forbidden_host(&url.host().unwrap()).is_some()
        };
        assert!(host("http://169.254.169.254/latest/meta-data/"));
        assert!(host("http://[fe80::1]:8080/x"));
        assert!(host("http://metadata.google.internal/computeMetadata/v1/"));
        assert!(host("http://METADATA.google.internal./x"));
        assert!(!host("http://127.0.0.1:9000/hook"));
        assert!(!host("https://hooks.slack.com/services/x"));
    }

    #[tokio::test]
    async fn names_are_resolved_without_forbidden_addresses() {
        let addrs: Vec<SocketAddr> = GuardedResolver
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
