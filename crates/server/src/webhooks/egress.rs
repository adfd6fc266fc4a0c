//! Where a delivery may go. A webhook URL is chosen by an administrator, but the
//! dispatcher runs inside the platform's network, so a URL must not reach what only the
//! platform's host can: the cloud instance-metadata service (AWS, GCP, Azure answer on
//! link-local `169.254.169.254`, `fd00:ec2::254`) or "this host" (`0.0.0.0`, `::`).
//! Loopback and private addresses stay allowed by default: on-premises receivers (and
//! this project's tests) live there. `ascend serve --webhook-refuse-private-networks`
//! refuses them too ([`Egress::refuse_private`]): loopback, RFC 1918, shared address space
//! (100.64.0.0/10), IPv6 unique-local (`fc00::/7`) and `localhost` names, for a platform
//! whose administrators should reach only receivers on the public internet.
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

/// Where deliveries may go beyond the public internet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Egress {
    /// Refuse loopback and private networks as well (never the default: on-premises
    /// receivers live there).
    pub refuse_private: bool,
}

impl Egress {
    /// Why a delivery may not go to `ip`, if it may not.
    pub fn forbidden_ip(self, ip: IpAddr) -> Option<&'static str> {
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
        } else if self.refuse_private {
            private_network(ip)
        } else {
            None
        }
    }

    /// Why a delivery may not go to the URL's host, judged without resolving it.
    pub fn forbidden_host(self, host: &url::Host<&str>) -> Option<&'static str> {
        match host {
            url::Host::Ipv4(v4) => self.forbidden_ip(IpAddr::V4(*v4)),
            url::Host::Ipv6(v6) => self.forbidden_ip(IpAddr::V6(*v6)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if METADATA_NAMES.contains(&name.as_str()) {
                    Some("the cloud metadata service")
                } else if self.refuse_private
                    && (name == "localhost" || name.ends_with(".localhost"))
                {
                    // RFC 6761: these names are loopback wherever they are resolved.
                    Some("a loopback name")
                } else {
                    None
                }
            }
        }
    }

    /// The system resolver, minus the addresses a delivery may not reach.
    pub fn resolver(self) -> GuardedResolver {
        GuardedResolver { egress: self }
    }
}

/// Which private network `ip` (IPv4-mapped already unwrapped) is in, if any.
fn private_network(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v4) if v4.is_private() => Some("a private address (RFC 1918)"),
        // 100.64.0.0/10, carrier-grade NAT and many clouds' internal ranges.
        IpAddr::V4(v4) if v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64 => {
            Some("a shared address (100.64.0.0/10)")
        }
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v6) if v6.is_unique_local() => Some("a unique-local address (fc00::/7)"),
        _ => None,
    }
}

/// The system resolver, minus the addresses a delivery may not reach (made by
/// [`Egress::resolver`]).
#[derive(Debug)]
pub struct GuardedResolver {
    egress: Egress,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = self.egress;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| egress.forbidden_ip(a.ip()).is_none())
                .collect();
            if allowed.is_empty() && !found.is_empty() {
                let why = egress
                    .forbidden_ip(found[0].ip())
                    .unwrap_or("a forbidden address");
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

    const DEFAULT: Egress = Egress {
        refuse_private: false,
    };
    const REFUSE: Egress = Egress {
        refuse_private: true,
    };

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

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
            assert!(DEFAULT.forbidden_ip(ip(bad)).is_some(), "{bad}");
            assert!(REFUSE.forbidden_ip(ip(bad)).is_some(), "{bad}");
        }
        for good in [
            "127.0.0.1",
            "10.0.0.5",
            "192.168.1.1",
            "::1",
            "8.8.8.8",
            "fd00::1",
        ] {
            assert!(DEFAULT.forbidden_ip(ip(good)).is_none(), "{good}");
        }
        let host = |u: &str| {
            let url = url::Url::parse(u).unwrap();
            DEFAULT.forbidden_host(&url.host().unwrap()).is_some()
        };
        assert!(host("http://169.254.169.254/latest/meta-data/"));
        assert!(host("http://[fe80::1]:8080/x"));
        assert!(host("http://metadata.google.internal/computeMetadata/v1/"));
        assert!(host("http://METADATA.google.internal./x"));
        assert!(!host("http://127.0.0.1:9000/hook"));
        assert!(!host("http://localhost:9000/hook"));
        assert!(!host("https://hooks.slack.com/services/x"));
    }

    #[test]
    fn refusing_private_networks_leaves_only_the_public_internet() {
        for (bad, why) in [
            ("127.0.0.1", "loopback"),
            ("127.1.2.3", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("10.0.0.5", "RFC 1918"),
            ("172.16.0.1", "RFC 1918"),
            ("172.31.255.255", "RFC 1918"),
            ("192.168.1.1", "RFC 1918"),
            ("::ffff:192.168.1.1", "RFC 1918"),
            ("100.64.0.1", "100.64.0.0/10"),
            ("100.127.255.255", "100.64.0.0/10"),
            ("fd00::1", "fc00::/7"),
            ("fc00::1", "fc00::/7"),
        ] {
            let got = REFUSE.forbidden_ip(ip(bad));
            assert!(got.is_some_and(|w| w.contains(why)), "{bad}: {got:?}");
        }
        for good in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "100.63.255.255",
            "2606:4700::1111",
        ] {
            assert_eq!(REFUSE.forbidden_ip(ip(good)), None, "{good}");
        }
        let host = |u: &str| {
            let url = url::Url::parse(u).unwrap();
            REFUSE.forbidden_host(&url.host().unwrap())
        };
        assert_eq!(host("http://localhost:9000/x"), Some("a loopback name"));
        assert_eq!(host("http://api.LOCALHOST./x"), Some("a loopback name"));
        assert_eq!(host("http://notlocalhost.example/x"), None);
        assert!(host("http://[::1]:9000/x").is_some());
    }

    #[tokio::test]
    async fn names_are_resolved_without_forbidden_addresses() {
        let addrs: Vec<SocketAddr> = DEFAULT
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        // Refusing private networks, a name that resolves only to loopback fails, and
        // the error says why (it lands in the delivery log).
        let refused = match REFUSE
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await
        {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e.to_string(),
        };
        assert!(
            refused.contains("`localhost` resolves to a loopback address"),
            "{refused}"
        );
    }
}
