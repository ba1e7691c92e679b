//! Signed messages: a body, its bytes (a tag naming its kind and version, then its fields, all
//! big-endian), and the signature of the gateway that sent it. On the wire a message is its
//! bytes followed by the 65 signature bytes; the tag says which kind it is.

use crate::key::{Address, GatewayKey, KeyError, Signature, keccak256, recover};

/// A kind of message: how it is written and read.
pub trait Body: Sized {
    /// The first bytes of every message of this kind.
    const TAG: &'static [u8];

    /// Appends the fields, after the tag.
    fn write_fields(&self, out: &mut Vec<u8>);

    /// Reads the fields, the whole of `fields`; `None` if they are not one of these.
    fn read_fields(fields: &[u8]) -> Option<Self>;

    /// The bytes that are signed: the tag and the fields.
    fn encode(&self) -> Vec<u8> {
        let mut out = Self::TAG.to_vec();
        self.write_fields(&mut out);
        out
    }

    /// Keccak-256 of [`Body::encode`].
    fn hash(&self) -> [u8; 32] {
        keccak256(&self.encode())
    }

    /// The body signed with `key`.
    fn sign(self, key: &GatewayKey) -> Signed<Self> {
        let signature = key.sign(&self.encode());
        Signed {
            body: self,
            signature,
        }
    }
}

/// A body with its sender's signature over [`Body::encode`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signed<T> {
    /// What is said.
    pub body: T,
    /// Who said it, recoverable.
    pub signature: Signature,
}

impl<T: Body> Signed<T> {
    /// Who signed it.
    pub fn sender(&self) -> Result<Address, KeyError> {
        recover(&self.body.encode(), &self.signature)
    }

    /// The message as it travels.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.body.encode();
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// A message of this kind from its bytes; `None` if they are not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(T::TAG)?;
        let split = rest.len().checked_sub(65)?;
        let (fields, signature) = rest.split_at(split);
        Some(Self {
            body: T::read_fields(fields)?,
            signature: Signature(signature.try_into().ok()?),
        })
    }
}

/// Reads big-endian fields off the front of a byte string.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    /// The next `N` bytes.
    pub(crate) fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    /// The next i64.
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.bytes().map(i64::from_be_bytes)
    }

    /// The next u64.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.bytes().map(u64::from_be_bytes)
    }

    /// `Some(value)` if nothing is left over.
    pub(crate) fn end<T>(self, value: T) -> Option<T> {
        self.0.is_empty().then_some(value)
    }
}
