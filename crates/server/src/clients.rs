//! The NAS allow-list: which source addresses may send RADIUS, with which secret.

use crate::config::RadiusClient;
use ipnet::IpNet;
use std::net::IpAddr;

/// A resolved allow-list entry.
#[derive(Debug, Clone)]
pub struct Client {
    pub name: String,
    pub net: IpNet,
    pub secret: Vec<u8>,
    pub require_message_authenticator: bool,
}

/// Lookup by source address; the most specific prefix wins, so a /32 for one
/// gateway can override the secret of its /24.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    /// Sorted by prefix length, longest first.
    entries: Vec<Client>,
}

impl Clients {
    pub fn new(cfg: &[RadiusClient]) -> Clients {
        let mut entries: Vec<Client> = cfg
            .iter()
            .map(|c| Client {
                name: c.name.clone(),
                net: c.address.trunc(),
                secret: c.secret.as_bytes().to_vec(),
                require_message_authenticator: c.require_message_authenticator,
            })
            .collect();
        entries.sort_by_key(|c| std::cmp::Reverse(c.net.prefix_len()));
        Clients { entries }
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<(usize, &Client)> {
        // IPv4-mapped IPv6 sources (dual-stack sockets) match IPv4 entries.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.entries
            .iter()
            .enumerate()
            .find(|(_, c)| c.net.contains(&ip))
    }

    pub fn get(&self, idx: usize) -> Option<&Client> {
        self.entries.get(idx)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, addr: &str) -> RadiusClient {
        RadiusClient {
            name: name.into(),
            address: addr.parse().unwrap(),
            secret: format!("secret-{name}"),
            require_message_authenticator: true,
            coa_address: None,
            coa_port: 3799,
            enforcement: Default::default(),
        }
    }

    #[test]
    fn longest_prefix_wins_and_unknown_sources_miss() {
        let cl = Clients::new(&[c("wide", "10.0.0.0/8"), c("narrow", "10.1.2.3/32")]);
        assert_eq!(
            cl.lookup("10.1.2.3".parse().unwrap()).unwrap().1.name,
            "narrow"
        );
        assert_eq!(
            cl.lookup("10.9.9.9".parse().unwrap()).unwrap().1.name,
            "wide"
        );
        assert!(cl.lookup("192.0.2.1".parse().unwrap()).is_none());
        assert_eq!(
            cl.lookup("::ffff:10.1.2.3".parse().unwrap())
                .unwrap()
                .1
                .name,
            "narrow"
        );
    }
}
