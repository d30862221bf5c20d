//! Phone numbers. Callers' numbers are personal data: this type normalises them so that a keyed
//! hash of the normalised form finds every call of one caller, however the recorder wrote it.

use crate::ParseError;
use std::fmt;

/// A phone number in E.164 form (`+` and 8 to 15 digits). Deliberately not `Display`-able by
/// accident into logs: `Debug` hides all but the country prefix.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct E164(String);

impl E164 {
    /// Accepts `+46 70-123 45 67`, `0046701234567`, `tel:+46701234567`; refuses national forms
    /// without a country code, since those cannot be normalised unambiguously.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let s = s.strip_prefix("tel:").unwrap_or(s);
        let s = s.split(';').next().unwrap_or(s);
        let digits_part = if let Some(rest) = s.strip_prefix('+') {
            rest
        } else if let Some(rest) = s.strip_prefix("00") {
            rest
        } else {
            return Err(ParseError::new(
                "phone number",
                "must start with '+' or '00' and a country code, e.g. +46701234567",
            ));
        };
        let mut digits = String::with_capacity(16);
        for c in digits_part.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(ParseError::new(
                        "phone number",
                        "may contain only digits, spaces, '-', '.', '(' and ')' after the '+'",
                    ));
                }
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(ParseError::new(
                "phone number",
                "must have a country code and 8 to 15 digits in all",
            ));
        }
        Ok(Self(format!("+{digits}")))
    }

    /// The normalised number. Callers must treat it as personal data: hash it, encrypt it, show it
    /// only to roles that may see it, never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("E164(+…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_common_forms() {
        for s in [
            "+46 70-123 45 67",
            "0046701234567",
            "tel:+46701234567;phone-context=x",
            "+46(70)1234567",
        ] {
            assert_eq!(
                E164::parse(s).map(|n| n.expose().to_owned()),
                Ok("+46701234567".into()),
                "{s}"
            );
        }
    }

    #[test]
    fn refuses_ambiguous_or_malformed() {
        for s in [
            "0701234567",
            "+46",
            "+0123456789",
            "+46abc1234567",
            "",
            "+1234567890123456",
        ] {
            assert!(E164::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn debug_hides_the_number() {
        let n = E164::parse("+46701234567").unwrap();
        assert!(!format!("{n:?}").contains("701234567"));
    }
}
