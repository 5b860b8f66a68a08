//! Firewall policies of device groups, evaluated against attributed flows.
//!
//! A policy is an ordered rule list: the first rule that matches a flow
//! decides; no match means the default action. A group without a policy
//! allows everything.
//!
//! Rules are stateless and compare the flow's **remote** side (the side that
//! is not the device). `direction` is the direction of the flow record's
//! packets: `Outbound` matches flows from the device (up), `Inbound` flows to
//! it (down). Flow records are one-way, so the replies of a connection the
//! device opened are inbound flows from the same remote address and port:
//! allow a service with `Both` (or an `Outbound` and an `Inbound` rule).

use crate::inventory::FieldError;
use crate::traffic::FlowDirection;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Most rules in one policy (validation bound).
pub const MAX_POLICY_RULES: usize = 256;
/// Most port ranges in one rule (validation bound).
pub const MAX_PORT_RANGES: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum PolicyAction {
    Allow,
    Deny,
}

impl PolicyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyAction::Allow => "allow",
            PolicyAction::Deny => "deny",
        }
    }
}

/// Which flows a rule applies to, by the direction of their packets.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum PolicyDirection {
    /// Device → remote (flow direction "up").
    Outbound,
    /// Remote → device (flow direction "down").
    Inbound,
    Both,
}

impl PolicyDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyDirection::Outbound => "outbound",
            PolicyDirection::Inbound => "inbound",
            PolicyDirection::Both => "both",
        }
    }

    pub fn matches(self, d: FlowDirection) -> bool {
        matches!(
            (self, d),
            (PolicyDirection::Both, _)
                | (PolicyDirection::Outbound, FlowDirection::Up)
                | (PolicyDirection::Inbound, FlowDirection::Down)
        )
    }
}

/// An IPv4 or IPv6 network: address and prefix length, host bits zero.
///
/// Serialized as text (`"10.0.0.0/8"`) in human-readable formats (JSON) and
/// as (address, prefix length) in the binary journal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// A network from an address and a prefix length (at most 32 for IPv4,
    /// 128 for IPv6). Host bits are cleared, so `10.1.2.3/8` is `10.0.0.0/8`.
    pub fn new(addr: IpAddr, len: u8) -> Option<Cidr> {
        let addr = match addr {
            IpAddr::V4(a) if len <= 32 => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(len))),
            IpAddr::V6(a) if len <= 128 => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(len))),
            _ => return None,
        };
        Some(Cidr { addr, len })
    }

    /// `0.0.0.0/0`: every IPv4 address.
    pub const ANY_V4: Cidr = Cidr {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        len: 0,
    };
    /// `::/0`: every IPv6 address.
    pub const ANY_V6: Cidr = Cidr {
        addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        len: 0,
    };

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` is in the network. Families never match each other; an
    /// IPv4-mapped IPv6 address counts as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => u32::from(a) & mask_v4(self.len) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                u128::from(a) & mask_v6(self.len) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `"10.0.0.0/8"`, `"2001:db8::/32"`, or a bare address (a host: /32 or /128).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network (like 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max && !l.starts_with('+'))
                .ok_or_else(|| format!("{s:?}: prefix length must be 0 to {max}"))?,
        };
        Cidr::new(addr, len).ok_or_else(|| format!("{s:?} is not an IP network"))
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            (self.addr, self.len).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        use serde::de::Error;
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(D::Error::custom)
        } else {
            let (addr, len) = <(IpAddr, u8)>::deserialize(d)?;
            Cidr::new(addr, len).ok_or_else(|| D::Error::custom("prefix length out of range"))
        }
    }
}

/// One rule: which flows it matches and what to do with them.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PolicyRule {
    /// The remote side's network.
    pub cidr: Cidr,
    /// IP protocol number; None = any.
    pub proto: Option<u8>,
    /// Remote port ranges, inclusive; empty = any port. Compared with the
    /// remote port field of the flow as exported (0 for protocols without ports).
    pub ports: Vec<(u16, u16)>,
    pub direction: PolicyDirection,
    pub action: PolicyAction,
}

impl PolicyRule {
    pub fn matches(
        &self,
        remote: IpAddr,
        remote_port: u16,
        proto: u8,
        direction: FlowDirection,
    ) -> bool {
        self.direction.matches(direction)
            && self.proto.is_none_or(|p| p == proto)
            && (self.ports.is_empty()
                || self
                    .ports
                    .iter()
                    .any(|&(lo, hi)| lo <= remote_port && remote_port <= hi))
            && self.cidr.contains(remote)
    }
}

/// The firewall policy of a device group.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FirewallPolicy {
    /// What happens to a flow that no rule matches.
    pub default_action: PolicyAction,
    /// Evaluated in order; the first match wins.
    pub rules: Vec<PolicyRule>,
}

/// The outcome of evaluating a policy for one flow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Verdict {
    pub action: PolicyAction,
    /// Index of the rule that decided; None when the default action did.
    pub rule: Option<usize>,
}

impl FirewallPolicy {
    /// Allows everything: what a group without a policy gets.
    pub fn allow_all() -> FirewallPolicy {
        FirewallPolicy {
            default_action: PolicyAction::Allow,
            rules: Vec::new(),
        }
    }

    /// First matching rule, else the default action. `remote` and
    /// `remote_port` are the non-device side of the flow.
    pub fn evaluate(
        &self,
        remote: IpAddr,
        remote_port: u16,
        proto: u8,
        direction: FlowDirection,
    ) -> Verdict {
        for (i, r) in self.rules.iter().enumerate() {
            if r.matches(remote, remote_port, proto, direction) {
                return Verdict {
                    action: r.action,
                    rule: Some(i),
                };
            }
        }
        Verdict {
            action: self.default_action,
            rule: None,
        }
    }

    /// Checks the bounds the engine relies on (rule and range counts, range
    /// order). The engine ignores a `SetPolicy` that fails this, so the API
    /// should call it first and report the error.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.rules.len() > MAX_POLICY_RULES {
            return Err(FieldError {
                field: "rules",
                message: format!(
                    "{} rules; at most {MAX_POLICY_RULES} are allowed",
                    self.rules.len()
                ),
            });
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.ports.len() > MAX_PORT_RANGES {
                return Err(FieldError {
                    field: "ports",
                    message: format!(
                        "rule {i}: {} port ranges; at most {MAX_PORT_RANGES} are allowed",
                        r.ports.len()
                    ),
                });
            }
            if let Some(&(lo, hi)) = r.ports.iter().find(|(lo, hi)| lo > hi) {
                return Err(FieldError {
                    field: "ports",
                    message: format!("rule {i}: port range {lo}-{hi} is empty (start > end)"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parses_masks_and_matches() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains(ip("10.255.0.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::ffff:b00:1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")), "v4-mapped counts as v4");
        assert!(Cidr::ANY_V4.contains(ip("1.2.3.4")));
        assert!(!Cidr::ANY_V4.contains(ip("2001:db8::1")));
        let h: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(h.prefix_len(), 32);
        assert!(h.contains(ip("192.0.2.7")) && !h.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert_eq!(
            "::/0".parse::<Cidr>().unwrap().to_string(),
            Cidr::ANY_V6.to_string()
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0.0/+8".parse::<Cidr>().is_err());
        assert!("2001:db8::/129".parse::<Cidr>().is_err());
        assert!("meters".parse::<Cidr>().is_err());
        assert_eq!(Cidr::new(ip("10.0.0.1"), 33), None);
    }

    #[test]
    fn cidr_serializes_as_text_for_humans_and_compact_for_the_journal() {
        let c: Cidr = "192.0.2.0/24".parse().unwrap();
        let bin = postcard::to_stdvec(&c).unwrap();
        assert_eq!(bin, [0, 192, 0, 2, 0, 24]);
        assert_eq!(postcard::from_bytes::<Cidr>(&bin).unwrap(), c);
        assert!(postcard::from_bytes::<Cidr>(&[0, 192, 0, 2, 0, 40]).is_err());
    }

    #[test]
    fn validate_bounds_rules_and_ranges() {
        let rule = PolicyRule {
            cidr: Cidr::ANY_V4,
            proto: None,
            ports: vec![(10, 5)],
            direction: PolicyDirection::Both,
            action: PolicyAction::Allow,
        };
        let mut p = FirewallPolicy {
            default_action: PolicyAction::Deny,
            rules: vec![rule.clone()],
        };
        let e = p.validate().unwrap_err();
        assert_eq!(e.field, "ports");
        assert!(e.message.contains("10-5"), "{e}");
        p.rules[0].ports = vec![(5, 10)];
        assert!(p.validate().is_ok());
        p.rules = vec![p.rules[0].clone(); MAX_POLICY_RULES + 1];
        assert_eq!(p.validate().unwrap_err().field, "rules");
    }
}
