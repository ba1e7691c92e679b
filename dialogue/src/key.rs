//! A gateway's identity: one secp256k1 key, which is also its Ethereum account. Messages are
//! signed as Ethereum signs a message (EIP-191, over the Keccak-256 of the message's bytes), so
//! that a contract can check them with `ecrecover`.

use std::fmt;

use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, SigningKey, VerifyingKey};
use k256::elliptic_curve::scalar::IsHigh;
use tiny_keccak::{Hasher, Keccak};

/// Keccak-256 of `bytes`.
pub fn keccak256(bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak::v256();
    hasher.update(bytes);
    let mut out = [0; 32];
    hasher.finalize(&mut out);
    out
}

/// An account: the last 20 bytes of the Keccak-256 of the uncompressed public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 20]);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", encode_hex(&self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Address {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        let hex = text.strip_prefix("0x").unwrap_or(text);
        let bytes = decode_hex(hex).ok_or(KeyError::Address)?;
        Ok(Self(bytes.try_into().map_err(|_| KeyError::Address)?))
    }
}

/// Bytes as lower-case hexadecimal digits.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from lower- or upper-case hexadecimal digits.
pub(crate) fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    // `from_str_radix` would also take a sign.
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A signature as Ethereum writes it: r, s (the lower of its two values), v (27 or 28).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 65]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", encode_hex(&self.0))
    }
}

/// What is wrong with a key, an address or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a secret key on the curve (zero, or not below the group order).
    #[error("not a secp256k1 secret key")]
    Secret,
    /// Not 20 bytes in hexadecimal.
    #[error("not an address (20 bytes in hexadecimal)")]
    Address,
    /// The signature does not verify, or is not in its canonical (low s) form.
    #[error("bad signature")]
    Signature,
}

/// A gateway's secret key.
#[derive(Clone)]
pub struct GatewayKey(SigningKey);

impl fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GatewayKey({})", self.address())
    }
}

impl GatewayKey {
    /// The key of a 32-byte secret (big-endian), as it is stored.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, KeyError> {
        SigningKey::from_slice(secret)
            .map(Self)
            .map_err(|_| KeyError::Secret)
    }

    /// The 32-byte secret, to store.
    pub fn secret(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    /// The key of a secret written as 64 hexadecimal digits, as it is stored in a file.
    pub fn from_hex(hex: &str) -> Result<Self, KeyError> {
        let bytes = decode_hex(hex).ok_or(KeyError::Secret)?;
        Self::from_secret(&bytes.try_into().map_err(|_| KeyError::Secret)?)
    }

    /// The secret as 64 hexadecimal digits.
    pub fn to_hex(&self) -> String {
        encode_hex(&self.secret())
    }

    /// The account of this key.
    pub fn address(&self) -> Address {
        address_of(self.0.verifying_key())
    }

    /// Signs `message` (its EIP-191 hash).
    pub fn sign(&self, message: &[u8]) -> Signature {
        let (signature, recovery) = self.0.sign_prehash_recoverable(&signed_hash(message));
        // k256 signs with the low s already; normalising keeps that true whatever it does.
        let (signature, recovery) = if is_high(&signature) {
            let flipped = RecoveryId::new(!recovery.is_y_odd(), recovery.is_x_reduced());
            (signature.normalize_s(), flipped)
        } else {
            (signature, recovery)
        };
        let mut out = [0; 65];
        out[..64].copy_from_slice(&signature.to_bytes());
        out[64] = 27 + recovery.to_byte();
        Signature(out)
    }
}

/// The account that signed `message`, refusing a signature with the high s (as OpenZeppelin's
/// `ECDSA.recover` does): otherwise one signer has two signatures for one message.
pub fn recover(message: &[u8], signature: &Signature) -> Result<Address, KeyError> {
    let sig = EcdsaSignature::from_slice(&signature.0[..64]).map_err(|_| KeyError::Signature)?;
    if is_high(&sig) {
        return Err(KeyError::Signature);
    }
    // 27 or 28 only, as `ecrecover` takes them.
    let v = match signature.0[64] {
        27 => 0,
        28 => 1,
        _ => return Err(KeyError::Signature),
    };
    let recovery = RecoveryId::from_byte(v).ok_or(KeyError::Signature)?;
    let key = VerifyingKey::recover_from_prehash(&signed_hash(message), &sig, recovery)
        .map_err(|_| KeyError::Signature)?;
    Ok(address_of(&key))
}

/// EIP-191: Keccak-256 of "\x19Ethereum Signed Message:\n32" and the message's Keccak-256.
fn signed_hash(message: &[u8]) -> [u8; 32] {
    let mut bytes = b"\x19Ethereum Signed Message:\n32".to_vec();
    bytes.extend_from_slice(&keccak256(message));
    keccak256(&bytes)
}

/// Whether `s` is in the upper half of the group order.
fn is_high(signature: &EcdsaSignature) -> bool {
    bool::from(signature.s().is_high())
}

/// The account of a public key in SEC1 form (compressed or not); `None` if it is not one.
pub fn address_of_public(sec1: &[u8]) -> Option<Address> {
    VerifyingKey::from_sec1_bytes(sec1)
        .ok()
        .map(|key| address_of(&key))
}

fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_sec1_point(false);
    let hash = keccak256(&point.as_bytes()[1..]);
    let mut out = [0; 20];
    out.copy_from_slice(&hash[12..]);
    Address(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first of anvil's well-known development keys and its account.
    const ANVIL_SECRET: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const ANVIL_ADDRESS: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

    fn anvil() -> GatewayKey {
        GatewayKey::from_hex(ANVIL_SECRET).unwrap()
    }

    #[test]
    fn the_address_is_the_ethereum_account() {
        assert_eq!(anvil().address().to_string(), ANVIL_ADDRESS);
        let public = anvil().0.verifying_key().to_sec1_point(true);
        assert_eq!(
            address_of_public(public.as_bytes()),
            Some(anvil().address())
        );
        assert_eq!(address_of_public(&[5; 33]), None);
        assert_eq!(ANVIL_ADDRESS.parse::<Address>().unwrap(), anvil().address());
    }

    #[test]
    fn a_signature_recovers_its_signer_and_nothing_else() {
        let key = anvil();
        let signature = key.sign(b"bid");
        assert_eq!(recover(b"bid", &signature), Ok(key.address()));
        assert_ne!(recover(b"bud", &signature), Ok(key.address()));
        let mut flipped = signature;
        flipped.0[10] ^= 1;
        assert_ne!(recover(b"bid", &flipped), Ok(key.address()));
        let mut v = signature;
        v.0[64] += 2;
        assert_eq!(recover(b"bid", &v), Err(KeyError::Signature));
    }

    #[test]
    fn the_high_s_twin_of_a_signature_is_refused() {
        let key = anvil();
        let signature = key.sign(b"bid");
        let sig = EcdsaSignature::from_slice(&signature.0[..64]).unwrap();
        let (r, s) = sig.split_scalars();
        let twin = EcdsaSignature::from_scalars(r, -*s).unwrap();
        let mut bytes = signature;
        bytes.0[..64].copy_from_slice(&twin.to_bytes());
        bytes.0[64] ^= 1;
        assert_eq!(recover(b"bid", &bytes), Err(KeyError::Signature));
    }

    #[test]
    fn a_key_reads_back_from_its_hex_and_nothing_else_does() {
        assert_eq!(anvil().to_hex(), ANVIL_SECRET);
        assert_eq!(
            GatewayKey::from_hex(&ANVIL_SECRET[2..]).unwrap_err(),
            KeyError::Secret
        );
        assert_eq!(GatewayKey::from_hex("zz").unwrap_err(), KeyError::Secret);
        assert_eq!(decode_hex("+f+f"), None);
    }

    #[test]
    fn a_zero_secret_is_no_key() {
        assert_eq!(
            GatewayKey::from_secret(&[0; 32]).unwrap_err(),
            KeyError::Secret
        );
    }
}
