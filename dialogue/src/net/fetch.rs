//! The fetch of the bids a peer holds and this node lacks: the request names the slot and what
//! the node holds of each member (its [`SlotBook::inventory`](crate::SlotBook::inventory)), the
//! response carries the signed bids missing from it.

use std::io;

use futures_util::{AsyncReadExt, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use super::MAX_MESSAGE;
use crate::terms::{MAX_MEMBERS, Slot};

/// The protocol.
pub(super) const FETCH: StreamProtocol = StreamProtocol::new("/daisee/dialogue/bids/2");

/// The most bids one response carries (two per member at most).
const MAX_BIDS: usize = 2 * MAX_MEMBERS;

/// A request for the bids of `slot` missing from `inventory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BidRequest {
    pub slot: Slot,
    pub inventory: Vec<[u8; 32]>,
}

/// Requests are a slot start (i64), a count (u16) and that many 32-byte inventory entries;
/// responses a count (u16) and that many messages, each a length (u16) and its bytes. Bounded:
/// a peer cannot make the node read more than a community's worth.
#[derive(Debug, Clone, Default)]
pub(super) struct FetchCodec;

impl request_response::Codec for FetchCodec {
    type Protocol = StreamProtocol;
    type Request = BidRequest;
    type Response = Vec<Vec<u8>>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<BidRequest>
    where
        T: futures_util::AsyncRead + Unpin + Send,
    {
        let mut slot = [0; 8];
        io.read_exact(&mut slot).await?;
        let count = usize::from(read_u16(io).await?);
        if count > MAX_MEMBERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "too many members",
            ));
        }
        let mut inventory = vec![[0; 32]; count];
        for entry in &mut inventory {
            io.read_exact(entry).await?;
        }
        Ok(BidRequest {
            slot: Slot(i64::from_be_bytes(slot)),
            inventory,
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<Vec<u8>>>
    where
        T: futures_util::AsyncRead + Unpin + Send,
    {
        let count = usize::from(read_u16(io).await?);
        if count > MAX_BIDS {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too many bids"));
        }
        let mut bids = Vec::with_capacity(count);
        for _ in 0..count {
            let len = usize::from(read_u16(io).await?);
            if len > MAX_MESSAGE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bid too long"));
            }
            let mut bid = vec![0; len];
            io.read_exact(&mut bid).await?;
            bids.push(bid);
        }
        Ok(bids)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: BidRequest,
    ) -> io::Result<()>
    where
        T: futures_util::AsyncWrite + Unpin + Send,
    {
        let inventory = &request.inventory[..request.inventory.len().min(MAX_MEMBERS)];
        // One write: each write on a yamux stream is a frame of its own.
        let mut bytes = Vec::with_capacity(10 + 32 * inventory.len());
        bytes.extend_from_slice(&request.slot.0.to_be_bytes());
        bytes.extend_from_slice(&(inventory.len() as u16).to_be_bytes());
        bytes.extend(inventory.iter().flatten());
        io.write_all(&bytes).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bids: Vec<Vec<u8>>,
    ) -> io::Result<()>
    where
        T: futures_util::AsyncWrite + Unpin + Send,
    {
        let bids: Vec<&Vec<u8>> = bids
            .iter()
            .filter(|b| b.len() <= MAX_MESSAGE)
            .take(MAX_BIDS)
            .collect();
        let mut bytes = (bids.len() as u16).to_be_bytes().to_vec();
        for bid in bids {
            bytes.extend_from_slice(&(bid.len() as u16).to_be_bytes());
            bytes.extend_from_slice(bid);
        }
        io.write_all(&bytes).await?;
        io.close().await
    }
}

async fn read_u16<T: futures_util::AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<u16> {
    let mut bytes = [0; 2];
    io.read_exact(&mut bytes).await?;
    Ok(u16::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A panic is the failure report.

    use futures_util::io::Cursor;
    use request_response::Codec;

    use super::*;

    #[tokio::test]
    async fn a_request_and_a_response_read_back_as_written() {
        let request = BidRequest {
            slot: Slot(900_000),
            inventory: vec![[1; 32], [0; 32], [0xff; 32]],
        };
        let mut wire = Cursor::new(Vec::new());
        FetchCodec
            .write_request(&FETCH, &mut wire, request.clone())
            .await
            .unwrap();
        assert_eq!(wire.get_ref().len(), 8 + 2 + 3 * 32);
        wire.set_position(0);
        let read = FetchCodec.read_request(&FETCH, &mut wire).await.unwrap();
        assert_eq!(read, request);

        let bids = vec![vec![7; 900], vec![8; 12]];
        let mut wire = Cursor::new(Vec::new());
        FetchCodec
            .write_response(&FETCH, &mut wire, bids.clone())
            .await
            .unwrap();
        wire.set_position(0);
        let read = FetchCodec.read_response(&FETCH, &mut wire).await.unwrap();
        assert_eq!(read, bids);
    }

    #[tokio::test]
    async fn a_request_naming_more_members_than_a_community_has_is_refused_unread() {
        let mut bytes = 900_000_i64.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(MAX_MEMBERS as u16 + 1).to_be_bytes());
        let mut wire = Cursor::new(bytes);
        let e = FetchCodec
            .read_request(&FETCH, &mut wire)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(wire.position(), 10, "nothing read past the count");
    }

    #[tokio::test]
    async fn a_response_with_an_oversized_bid_is_refused() {
        let mut bytes = 1_u16.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(MAX_MESSAGE as u16 + 1).to_be_bytes());
        let mut wire = Cursor::new(bytes);
        let e = FetchCodec
            .read_response(&FETCH, &mut wire)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
