//! Kubernetes resource quantities (`100m`, `0.5`, `128Mi`, `1G`, `1e3`), by Kubernetes' grammar:
//!
//! ```text
//! quantity ::= number suffix          number ::= digits | digits.digits | digits. | .digits
//! suffix   ::= Ki|Mi|Gi|Ti|Pi|Ei  |  m|""|k|M|G|T|P|E  |  (e|E) signed-integer
//! ```
//!
//! A leading `+` is accepted as Kubernetes does; negative values are rejected because no
//! resource request or limit can be negative. Values are kept as exact integers in the unit the
//! Docker mapping needs (millicores for CPU, bytes for memory), rounded up as Kubernetes does.

use serde::{Deserialize, Serialize};

/// CPU in millicores (`100m` = 100, `0.5` = 500, `2` = 2000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cpu(pub u64);

/// Memory in bytes (`128Mi` = 134217728, `1G` = 1000000000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Memory(pub u64);

impl Cpu {
    pub fn parse(s: &str) -> Result<Cpu, String> {
        Ok(Cpu(Quantity::parse(s)?.scaled_ceil(1000)?))
    }

    /// Docker's `NanoCpus`.
    pub fn nano(self) -> i64 {
        (self.0 as i64).saturating_mul(1_000_000)
    }
}

impl Memory {
    pub fn parse(s: &str) -> Result<Memory, String> {
        Ok(Memory(Quantity::parse(s)?.scaled_ceil(1)?))
    }
}

impl std::fmt::Display for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 % 1000 == 0 {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [(&str, u64); 4] =
            [("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10), ("", 1)];
        let (unit, size) = UNITS
            .iter()
            .copied()
            .find(|(_, size)| self.0 % size == 0 && self.0 >= *size)
            .unwrap_or(("", 1));
        write!(f, "{}{unit}", self.0 / size)
    }
}

/// An exact decimal `digits * 10^exp10 * 2^exp2`, before it is turned into a unit.
struct Quantity {
    digits: u128,
    exp10: i32,
    exp2: u32,
}

impl Quantity {
    fn parse(input: &str) -> Result<Quantity, String> {
        let bad = || format!("invalid quantity {input:?}");
        let s = input.strip_prefix('+').unwrap_or(input);
        if s.starts_with('-') {
            return Err(format!("invalid quantity {input:?}: must not be negative"));
        }
        let number_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(number_end);
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(bad());
        }
        let mut digits: u128 = 0;
        for c in int_part.chars().chain(frac_part.chars()) {
            digits = digits
                .checked_mul(10)
                .and_then(|d| d.checked_add(u128::from(c as u8 - b'0')))
                .ok_or_else(|| format!("invalid quantity {input:?}: too large"))?;
        }
        let mut exp10 = -(frac_part.len() as i32);
        let mut exp2 = 0;
        match suffix {
            "" => {}
            "m" => exp10 -= 3,
            "k" => exp10 += 3,
            "M" => exp10 += 6,
            "G" => exp10 += 9,
            "T" => exp10 += 12,
            "P" => exp10 += 15,
            "E" => exp10 += 18,
            "Ki" => exp2 = 10,
            "Mi" => exp2 = 20,
            "Gi" => exp2 = 30,
            "Ti" => exp2 = 40,
            "Pi" => exp2 = 50,
            "Ei" => exp2 = 60,
            _ => {
                let exp = suffix
                    .strip_prefix(['e', 'E'])
                    .filter(|e| {
                        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
                        !e.is_empty() && e.len() <= 3 && e.bytes().all(|b| b.is_ascii_digit())
                    })
                    .ok_or_else(bad)?;
                exp10 += exp.parse::<i32>().map_err(|_| bad())?;
            }
        }
        Ok(Quantity {
            digits,
            exp10,
            exp2,
        })
    }

    /// The value times `unit`, rounded up to a whole number.
    fn scaled_ceil(&self, unit: u128) -> Result<u64, String> {
        let too_large = || "quantity too large".to_string();
        let mut num = self.digits.checked_mul(unit).ok_or_else(too_large)?;
        num = num
            .checked_shl(self.exp2)
            .filter(|n| n >> self.exp2 == self.digits * unit)
            .ok_or_else(too_large)?;
        let mut den: u128 = 1;
        if self.exp10 >= 0 {
            let pow = 10u128
                .checked_pow(self.exp10 as u32)
                .ok_or_else(too_large)?;
            num = num.checked_mul(pow).ok_or_else(too_large)?;
        } else {
            den = 10u128
                .checked_pow(self.exp10.unsigned_abs())
                .ok_or_else(too_large)?;
        }
        let value = num.div_ceil(den);
        u64::try_from(value).map_err(|_| too_large())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities_become_millicores() {
        assert_eq!(Cpu::parse("100m"), Ok(Cpu(100)));
        assert_eq!(Cpu::parse("0.5"), Ok(Cpu(500)));
        assert_eq!(Cpu::parse("0.1"), Ok(Cpu(100)));
        assert_eq!(Cpu::parse("2"), Ok(Cpu(2000)));
        assert_eq!(Cpu::parse("+1"), Ok(Cpu(1000)));
        assert_eq!(Cpu::parse("1e3"), Ok(Cpu(1_000_000)));
        assert_eq!(Cpu::parse(".5"), Ok(Cpu(500)));
        assert_eq!(Cpu::parse("1."), Ok(Cpu(1000)));
        // Finer than a millicore rounds up, as Kubernetes does.
        assert_eq!(Cpu::parse("0.0001"), Ok(Cpu(1)));
    }

    #[test]
    fn memory_quantities_become_bytes() {
        assert_eq!(Memory::parse("128Mi"), Ok(Memory(128 << 20)));
        assert_eq!(Memory::parse("1G"), Ok(Memory(1_000_000_000)));
        assert_eq!(Memory::parse("1Gi"), Ok(Memory(1 << 30)));
        assert_eq!(Memory::parse("100"), Ok(Memory(100)));
        assert_eq!(Memory::parse("1e3"), Ok(Memory(1000)));
        assert_eq!(Memory::parse("1.5Ki"), Ok(Memory(1536)));
        assert_eq!(Memory::parse("129e-2"), Ok(Memory(2)));
    }

    #[test]
    fn malformed_quantities_are_rejected() {
        for bad in [
            "12x", "1.5.5", "-1", "", "Mi", ".", "1e", "1ee3", "1 Mi", "1mi", "0x10", "1e1000",
        ] {
            assert!(Memory::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            Memory::parse("12x").unwrap_err(),
            "invalid quantity \"12x\""
        );
        assert!(Memory::parse("-1").unwrap_err().contains("negative"));
        assert!(Memory::parse("99999999999Ei")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn quantities_display_in_their_natural_unit() {
        assert_eq!(Cpu(250).to_string(), "250m");
        assert_eq!(Cpu(2000).to_string(), "2");
        assert_eq!(Memory(128 << 20).to_string(), "128Mi");
        assert_eq!(Memory(1000).to_string(), "1000");
    }
}
