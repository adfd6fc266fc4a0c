//! Operation-name parsing in any spelling, and the catalog lookups behind it. Never
//! panics; a parsed name is canonical (parsing its own display gives it back, in both
//! spellings when the catalog knows it); an error names the input.
#![no_main]

use ascend_core::{OperationName, catalog, classify_action_type};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match OperationName::parse(&text) {
        Ok(name) => {
            assert!(!name.service.is_empty() && !name.operation.is_empty());
            let again =
                OperationName::parse(&name.to_string()).expect("a name's own display parses");
            assert_eq!(again, name, "parsing is not canonical for {text:?}");
            let action = name.cedar_action();
            if let Some(info) = name.info() {
                assert_eq!(OperationName::from_info(info), name);
                let via_cedar =
                    OperationName::parse(&action).expect("a catalog cedar action parses");
                assert!(
                    via_cedar.info().is_some(),
                    "{action} lost its catalog entry"
                );
            }
        }
        Err(e) => assert_eq!(e.input, text.as_ref()),
    }
    let cat = catalog();
    let _ = cat.by_cedar_action(&text);
    if let Some((service, operation)) = text.split_once(['.', ':']) {
        let _ = cat.find(service, operation);
        let _ = cat.knows_service(service);
        let _ = cat.client_name(service);
    }
    let c = classify_action_type(&text);
    assert!(c.score <= 100);
});
