//! Recoverable keys (issue 27): sealing a key's secret with AES-256-GCM
//! under an operator key, and opening it again.
//!
//! The operator keys come from `KEYWARD_RECOVERY_KEYS_FILE`, one
//! `id:base64-of-32-bytes` a line, the first the current one: new secrets
//! are sealed under it, older ones are kept only to open (and re-seal,
//! `keyward recovery rewrap`) what they sealed. Each sealed secret names
//! its key id, has its own random 96-bit nonce, and binds the workspace and
//! key ids as associated data, so a ciphertext copied onto another key's
//! row (or workspace's) does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// The operator keys, the current one first. Its `Debug` shows only ids.
#[derive(Clone)]
pub struct OperatorKeys {
    keys: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for OperatorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorKeys")
            .field("ids", &self.ids())
            .finish()
    }
}

/// A sealed secret as stored: which operator key, the nonce and the
/// ciphertext (with its tag), both base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub enc_key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// Why a sealed secret could not be opened. Never a panic, never a guess:
/// the caller shows nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the operator key \"{0}\" that encrypted this secret is not in KEYWARD_RECOVERY_KEYS_FILE"
    )]
    UnknownKey(String),
    #[error(
        "the secret could not be decrypted: the operator key \"{0}\" in KEYWARD_RECOVERY_KEYS_FILE is not the one it was encrypted with, or the stored secret was altered"
    )]
    Undecryptable(String),
}

/// Longest operator key id (it is stored with every secret).
const MAX_ID_LEN: usize = 32;

impl OperatorKeys {
    /// Read the key file's text: `id:base64` lines (blank lines and `#`
    /// comments skipped), ids unique, each key exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys: Vec<(String, [u8; 32])> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = n + 1;
            let (id, material) = line
                .split_once(':')
                .ok_or_else(|| format!("line {n} is not `id:base64-of-32-bytes` (no colon)"))?;
            let id = id.trim();
            let ok_id = !id.is_empty()
                && id.len() <= MAX_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok_id {
                return Err(format!(
                    "line {n}: a key id has 1 to {MAX_ID_LEN} letters, digits, - or _"
                ));
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(format!("line {n}: the key id \"{id}\" appears twice"));
            }
            let bytes = B64
                .decode(material.trim())
                .map_err(|_| format!("line {n}: the key of \"{id}\" is not base64"))?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| {
                format!("line {n}: the key of \"{id}\" must be 32 bytes (44 base64 characters)")
            })?;
            keys.push((id.to_owned(), key));
        }
        if keys.is_empty() {
            return Err("holds no key (one `id:base64-of-32-bytes` a line)".into());
        }
        Ok(OperatorKeys { keys })
    }

    /// The current key's id: what new secrets are sealed under.
    pub fn current_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Every key id, current first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    fn cipher(key: &[u8; 32]) -> Aes256Gcm {
        Aes256Gcm::new(key.into())
    }

    /// Seal `secret` of the key `key_id` in `workspace_id` under the current
    /// operator key, with a fresh random nonce.
    pub fn seal(&self, workspace_id: &str, key_id: &str, secret: &str) -> Sealed {
        let (id, key) = &self.keys[0];
        let nonce: [u8; 12] = rand::random();
        let aad = associated_data(workspace_id, key_id);
        // Encryption with a valid key and nonce cannot fail for inputs
        // this size; an error would be a bug in the cipher, not input.
        let ciphertext = Self::cipher(key)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        Sealed {
            enc_key_id: id.clone(),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ciphertext),
        }
    }

    /// Open a sealed secret of the key `key_id` in `workspace_id`.
    pub fn open(
        &self,
        workspace_id: &str,
        key_id: &str,
        sealed: &Sealed,
    ) -> Result<String, OpenError> {
        let (_, key) = self
            .keys
            .iter()
            .find(|(id, _)| *id == sealed.enc_key_id)
            .ok_or_else(|| OpenError::UnknownKey(sealed.enc_key_id.clone()))?;
        let bad = || OpenError::Undecryptable(sealed.enc_key_id.clone());
        let nonce = B64.decode(&sealed.nonce).map_err(|_| bad())?;
        if nonce.len() != 12 {
            return Err(bad());
        }
        let ciphertext = B64.decode(&sealed.ciphertext).map_err(|_| bad())?;
        let aad = associated_data(workspace_id, key_id);
        let plain = Self::cipher(key)
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

/// What binds a ciphertext to its key: the workspace and key ids.
fn associated_data(workspace_id: &str, key_id: &str) -> Vec<u8> {
    format!("keyward recoverable key v1\n{workspace_id}\n{key_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(lines: &str) -> OperatorKeys {
        OperatorKeys::parse(lines).unwrap()
    }

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo=";

    #[test]
    fn seals_and_opens_bound_to_its_key() {
        let k = keys(K1);
        let sealed = k.seal("ws_1", "key_1", "sk_live_secret");
        assert_eq!(sealed.enc_key_id, "k1");
        assert!(!sealed.ciphertext.contains("sk_live"));
        assert_eq!(k.open("ws_1", "key_1", &sealed).unwrap(), "sk_live_secret");
        // Moved to another key or workspace: refused.
        assert!(k.open("ws_1", "key_2", &sealed).is_err());
        assert!(k.open("ws_2", "key_1", &sealed).is_err());
        // Nonces differ per secret.
        assert_ne!(
            k.seal("ws_1", "key_1", "x").nonce,
            k.seal("ws_1", "key_1", "x").nonce
        );
    }

    #[test]
    fn wrong_or_missing_operator_key_fails_closed() {
        let sealed = keys(K1).seal("ws", "key", "s");
        let other = K2.replace("k2:", "k1:");
        assert!(matches!(
            keys(&other).open("ws", "key", &sealed),
            Err(OpenError::Undecryptable(_))
        ));
        assert!(matches!(
            keys(K2).open("ws", "key", &sealed),
            Err(OpenError::UnknownKey(_))
        ));
        // An older key still opens what it sealed; the first is current.
        let both = keys(&format!("{K2}\n{K1}\n"));
        assert_eq!(both.current_id(), "k2");
        assert_eq!(both.open("ws", "key", &sealed).unwrap(), "s");
    }

    #[test]
    fn parse_refuses_bad_files() {
        assert!(OperatorKeys::parse("").is_err());
        assert!(OperatorKeys::parse("# only a comment\n").is_err());
        assert!(OperatorKeys::parse("k1").is_err());
        assert!(OperatorKeys::parse("k1:AAAA").is_err());
        assert!(OperatorKeys::parse(&format!("{K1}\n{K1}")).is_err());
        assert!(
            OperatorKeys::parse("bad id:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").is_err()
        );
        let debug = format!("{:?}", keys(K1));
        assert!(debug.contains("k1") && !debug.contains("AAEC"));
    }
}
