//! Deterministic fleet identities: IMSI, ICCID, MSISDN, IMEISV.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::geo::HOME;
use crate::profile::{Profile, ProfileMix};

/// One simulated SIM and the device it sits in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimDevice {
    pub index: u32,
    pub imsi: String,
    pub iccid: String,
    pub msisdn: String,
    pub imeisv: String,
    pub profile: Profile,
    /// Home PLMN as MCC+MNC digits, e.g. "90170".
    pub home: String,
    /// False for the devices the demo leaves out of the inventory on purpose.
    pub provisioned: bool,
}

impl SimDevice {
    /// The 15-digit IMEI: the IMEISV's TAC and serial plus the Luhn check digit.
    pub fn imei(&self) -> String {
        let mut s: String = self.imeisv.chars().take(14).collect();
        let check = luhn_check_digit(&s);
        s.push(char::from(b'0' + check));
        s
    }

    /// The 8-digit Type Allocation Code.
    pub fn tac(&self) -> &str {
        self.imeisv.get(..8).unwrap_or(&self.imeisv)
    }
}

/// Stream numbers for ChaCha8: one per device and purpose, so a device's identity and
/// behaviour depend only on (seed, index), never on how other devices were drawn.
pub(crate) const STREAM_FLEET: u64 = 0;
pub(crate) const STREAM_PGW: u64 = 3 << 32;
pub(crate) fn identity_stream(index: u32) -> u64 {
    (1 << 32) | u64::from(index)
}
pub(crate) fn behaviour_stream(index: u32) -> u64 {
    (2 << 32) | u64::from(index)
}
/// The flows behind a device's records: a stream of its own, so that exporting them
/// leaves the records untouched.
pub(crate) fn flow_stream(index: u32) -> u64 {
    (4 << 32) | u64::from(index)
}

pub(crate) fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Luhn check digit for a string of ASCII digits (non-digits are ignored).
pub fn luhn_check_digit(digits: &str) -> u8 {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().filter(u8::is_ascii_digit).enumerate() {
        let mut d = u32::from(c - b'0');
        // The rightmost payload digit is doubled, since the check digit will follow it.
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    ((10 - sum % 10) % 10) as u8
}

/// True if the last digit is the Luhn check digit of the others.
pub fn luhn_valid(digits: &str) -> bool {
    match digits.len().checked_sub(1) {
        Some(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            luhn_check_digit(&digits[..n]) == digits.as_bytes()[n] - b'0'
        }
        _ => false,
    }
}

/// An injective map from index to a `digits`-digit number: an affine permutation of
/// 0..10^digits with a seed-chosen offset and a stride coprime to 10.
struct Numbering {
    modulus: u64,
    offset: u64,
    stride: u64,
}

impl Numbering {
    fn new<R: Rng>(rng: &mut R, digits: u32) -> Self {
        let modulus = 10u64.pow(digits);
        let mut stride = rng.gen_range(modulus / 1000..modulus / 10) | 1;
        if stride % 5 == 0 {
            stride += 2;
        }
        Numbering {
            modulus,
            offset: rng.gen_range(0..modulus),
            stride,
        }
    }

    fn get(&self, index: u32) -> u64 {
        let m = u128::from(self.modulus);
        ((u128::from(self.offset) + u128::from(index) * u128::from(self.stride)) % m) as u64
    }
}

/// A deterministic fleet: the same `(seed, devices, mix, unprovisioned_share)` always
/// gives the same devices. Profiles follow the mix proportionally (largest remainder)
/// in a seed-shuffled order; `unprovisioned_share` of them (rounded) are marked
/// `provisioned: false`.
pub fn fleet(
    seed: u64,
    devices: u32,
    mix: &ProfileMix,
    unprovisioned_share: f64,
) -> Vec<SimDevice> {
    let mut frng = rng(seed, STREAM_FLEET);
    let numbers = Numbers::new(&mut frng);

    let counts = mix.counts(devices);
    let mut profiles: Vec<Profile> = Vec::with_capacity(devices as usize);
    for p in Profile::ALL {
        profiles.resize(profiles.len() + counts[p.index()] as usize, p);
    }
    profiles.shuffle(&mut frng);

    let share = if unprovisioned_share.is_finite() {
        unprovisioned_share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let unprovisioned = ((f64::from(devices) * share).round() as usize).min(devices as usize);
    let mut provisioned = vec![true; devices as usize];
    for i in rand::seq::index::sample(&mut frng, devices as usize, unprovisioned) {
        provisioned[i] = false;
    }

    profiles
        .into_iter()
        .zip(provisioned)
        .enumerate()
        .map(|(i, (profile, provisioned))| numbers.device(seed, i as u32, profile, provisioned))
        .collect()
}

/// The identity a fleet of this seed gives device `index` if it has `profile`: for
/// devices beyond the fleet's size (scenarios add some), unique within the seed.
pub(crate) fn identity(seed: u64, index: u32, profile: Profile, provisioned: bool) -> SimDevice {
    let mut frng = rng(seed, STREAM_FLEET);
    Numbers::new(&mut frng).device(seed, index, profile, provisioned)
}

/// The seed's numbering plans for IMSIs, ICCIDs and MSISDNs.
struct Numbers {
    msin: Numbering,
    iccid: Numbering,
    msisdn: Numbering,
}

impl Numbers {
    fn new<R: Rng>(frng: &mut R) -> Numbers {
        let msin = Numbering::new(frng, 10);
        let iccid = Numbering::new(frng, 11);
        let msisdn = Numbering::new(frng, 10);
        Numbers {
            msin,
            iccid,
            msisdn,
        }
    }

    fn device(&self, seed: u64, index: u32, profile: Profile, provisioned: bool) -> SimDevice {
        let mut r = rng(seed, identity_stream(index));
        let b = profile.behaviour();
        let tac = b.tacs[r.gen_range(0..b.tacs.len())];
        let serial: u32 = r.gen_range(0..1_000_000);
        let sv: u8 = r.gen_range(0..20);
        let iccid_body = format!("8988270{:011}", self.iccid.get(index));
        let check = luhn_check_digit(&iccid_body);
        SimDevice {
            index,
            imsi: format!("{HOME}{:010}", self.msin.get(index)),
            iccid: format!("{iccid_body}{check}"),
            msisdn: format!("88270{:010}", self.msisdn.get(index)),
            imeisv: format!("{tac}{serial:06}{sv:02}"),
            profile,
            home: HOME.to_string(),
            provisioned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_values() {
        // Classic examples: an IMEI and a card number.
        assert!(luhn_valid("490154203237518"));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert_eq!(luhn_check_digit("7992739871"), 3);
        assert!(!luhn_valid("7"));
        assert!(!luhn_valid("12a4"));
    }

    #[test]
    fn numbering_is_injective_on_a_prefix() {
        let mut r = rng(3, 0);
        let n = Numbering::new(&mut r, 4);
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            assert!(seen.insert(n.get(i)));
        }
    }
}
