//! People's passwords: argon2id hashes in PHC strings, and the policy a new
//! password must meet.
//!
//! Unlike an API key's secret ([`super::keys`]), a password is chosen by a
//! person and guessable, so it gets a slow, memory-hard hash with OWASP's
//! parameters (m = 19456 KiB, t = 2, p = 1). Hashing takes tens of
//! milliseconds of CPU: async code goes through [`hash_async`] and
//! [`verify_async`], which run on tokio's blocking pool.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::LazyLock;

/// OWASP's argon2id parameters: memory in KiB, passes, lanes.
const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const SALT_BYTES: usize = 16;

/// Counted in characters, not bytes: ten letters of any script will do.
pub const MIN_CHARS: usize = 10;
/// Counted in bytes: bounds what one login makes the server hash.
pub const MAX_BYTES: usize = 1024;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {} characters", MIN_CHARS)]
    TooShort,
    #[error("password must be at most {} bytes", MAX_BYTES)]
    TooLong,
    #[error("password must not be your e-mail address")]
    SameAsEmail,
    #[error("password is too common; choose another")]
    TooCommon,
    /// argon2's own error does not implement `std::error::Error` without its
    /// `std` feature, hence the message only.
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(M_COST, T_COST, P_COST, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`)
/// for `password`, with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    // The salt comes from `rand` (a CSPRNG seeded by the OS): argon2's
    // `OsRng` would need another `rand_core` with its `getrandom` feature.
    let salt = SaltString::encode_b64(&rand::random::<[u8; SALT_BYTES]>())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    let phc = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(phc.to_string())
}

/// Does `password` hash to `phc`? The parameters are the hash's own, so
/// hashes made with older parameters still verify. False for a malformed
/// hash.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash no password is checked to match, made once with the real
/// parameters. `None` only if hashing itself fails.
static DUMMY: LazyLock<Option<String>> =
    LazyLock::new(|| hash("no account has this password: it only costs time").ok());

/// The work of a failed [`verify`], for a login naming no account: an
/// unknown e-mail must cost what a wrong password costs, or the answer's
/// timing tells which e-mails have accounts. (The first call also makes the
/// dummy hash, once.)
pub fn verify_dummy(password: &str) {
    match DUMMY.as_deref() {
        Some(phc) => {
            std::hint::black_box(verify(password, phc));
        }
        // Hashing failed once; hashing again costs the same as verifying.
        None => {
            let _ = std::hint::black_box(hash(password));
        }
    }
}

/// [`hash`] on the blocking pool.
pub async fn hash_async(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| PasswordError::Hash(format!("the hashing task failed: {e}")))?
}

/// [`verify`] on the blocking pool. `phc` is `None` for an unknown account:
/// then [`verify_dummy`] does the same work and the answer is false.
pub async fn verify_async(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify(&password, &phc),
        None => {
            verify_dummy(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// The common passwords, lowercased; all at least [`MIN_CHARS`] long, as
/// shorter ones fail the length rule first.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Whether `password` may be the password of the account with `email`. The
/// messages are for the person choosing it.
pub fn check_policy(password: &str, email: &str) -> Result<(), PasswordError> {
    // Bytes first: cheap, and no 10-character password is over 1024 bytes.
    if password.len() > MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    let lower = password.to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email
        .rsplit_once('@')
        .map_or(email.as_str(), |(local, _)| local);
    if (!email.is_empty() && lower == email) || (!local.is_empty() && lower == local) {
        return Err(PasswordError::SameAsEmail);
    }
    if COMMON.contains(lower.as_str()) {
        return Err(PasswordError::TooCommon);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_with_the_right_password_only() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapler", &phc));
        assert!(!verify("", &phc));
        // A fresh salt each time.
        assert_ne!(phc, hash("correct horse battery staple").unwrap());
    }

    #[test]
    fn malformed_hashes_verify_nothing() {
        let phc = hash("correct horse battery staple").unwrap();
        let truncated = &phc[..phc.len() - 10];
        for bad in [
            "",
            "garbage",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$bcrypt$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            truncated,
        ] {
            assert!(!verify("correct horse battery staple", bad), "{bad:?}");
        }
    }

    #[test]
    fn verify_dummy_does_the_work_and_matches_nothing() {
        verify_dummy("correct horse battery staple");
        verify_dummy("");
        let dummy = DUMMY.as_deref().unwrap();
        assert!(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!verify("correct horse battery staple", dummy));
    }

    #[tokio::test]
    async fn async_wrappers_hash_and_verify() {
        let phc = hash_async("correct horse battery staple".into())
            .await
            .unwrap();
        assert!(verify_async("correct horse battery staple".into(), Some(phc.clone())).await);
        assert!(!verify_async("wrong horse battery staple".into(), Some(phc)).await);
        assert!(!verify_async("correct horse battery staple".into(), None).await);
    }

    #[test]
    fn policy_counts_characters_not_bytes() {
        let email = "ada@example.com";
        assert_eq!(check_policy("short", email), Err(PasswordError::TooShort));
        assert_eq!(
            check_policy("nine char", email),
            Err(PasswordError::TooShort)
        );
        // Nine characters in 18 bytes are still nine.
        assert_eq!(
            check_policy("ééééééééé", email),
            Err(PasswordError::TooShort)
        );
        assert_eq!(check_policy("éééééééééé", email), Ok(()));
        assert_eq!(check_policy("ten chars!", email), Ok(()));
        assert_eq!(check_policy(&"x".repeat(MAX_BYTES), email), Ok(()));
        assert_eq!(
            check_policy(&"x".repeat(MAX_BYTES + 1), email),
            Err(PasswordError::TooLong)
        );
        assert_eq!(
            check_policy(&"é".repeat(513), email),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn policy_refuses_the_email_and_its_local_part() {
        let email = "Ada.Lovelace@Example.com";
        assert_eq!(
            check_policy("ada.lovelace@example.com", email),
            Err(PasswordError::SameAsEmail)
        );
        assert_eq!(
            check_policy("ADA.LOVELACE", email),
            Err(PasswordError::SameAsEmail)
        );
        assert_eq!(
            check_policy("ada.lovelace", " ada.lovelace@example.com "),
            Err(PasswordError::SameAsEmail)
        );
        assert_eq!(check_policy("ada.lovelace!", email), Ok(()));
        // An e-mail without a local part compares with nothing.
        assert_eq!(check_policy("example.com-x", "@example.com"), Ok(()));
    }

    #[test]
    fn policy_refuses_common_passwords_in_any_case() {
        let email = "ada@example.com";
        for common in [
            "password123",
            "Password123",
            "QWERTYUIOP",
            "1234567890",
            "iloveyou123",
            "passw0rd123",
            "P@ssw0rd123",
        ] {
            assert_eq!(
                check_policy(common, email),
                Err(PasswordError::TooCommon),
                "{common}"
            );
        }
        assert_eq!(check_policy("password123 but longer", email), Ok(()));
    }

    #[test]
    fn the_common_list_is_long_lowercase_and_long_enough() {
        let lines: Vec<&str> = include_str!("common_passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        assert!(lines.len() >= 180, "{} entries", lines.len());
        assert_eq!(lines.len(), COMMON.len(), "duplicates in the list");
        for entry in lines {
            assert_eq!(entry, entry.to_lowercase(), "matched lowercased");
            assert!(
                entry.chars().count() >= MIN_CHARS,
                "{entry:?} is refused as too short already"
            );
        }
    }

    #[test]
    fn messages_are_for_people() {
        assert_eq!(
            PasswordError::TooShort.to_string(),
            "password must be at least 10 characters"
        );
        assert_eq!(
            PasswordError::TooCommon.to_string(),
            "password is too common; choose another"
        );
    }
}
