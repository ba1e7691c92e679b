//! The line between a client and the simulated devices, where wire faults happen: answers are
//! cut into frames and the frames of a faulty device are mangled on their way out.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

use crate::simulator::{Bank, lock};

/// What a faulty device does to its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// It does not answer: the client times out.
    Silent,
    /// It answers every request with this exception code.
    Exception(tokio_modbus::ExceptionCode),
    /// Its answers arrive as bytes that are no Modbus frame (line noise, a confused gateway).
    Garbage,
    /// Its answers fail their integrity check: the CRC on RTU; on TCP, which has no checksum of
    /// its own, the MBAP protocol identifier.
    BadCrc,
    /// It answers reads with one register fewer than asked for, in a well-formed frame.
    Short,
}

/// How frames are delimited on a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Modbus TCP: an MBAP header gives the length.
    Tcp,
    /// Modbus RTU: the function code and byte count give the length.
    Rtu,
}

impl Framing {
    /// The length of the first complete answer frame in `bytes`, if it has arrived whole.
    fn frame_len(self, bytes: &[u8]) -> Option<usize> {
        let len = match self {
            Framing::Tcp => 6 + usize::from(u16::from_be_bytes([*bytes.get(4)?, *bytes.get(5)?])),
            Framing::Rtu => match *bytes.get(1)? {
                0x80.. => 5,
                0x03 | 0x04 => 5 + usize::from(*bytes.get(2)?),
                0x06 | 0x10 => 8,
                // Nothing the simulator sends; pass it on as it came.
                _ => bytes.len(),
            },
        };
        (bytes.len() >= len).then_some(len)
    }

    /// The unit an answer frame comes from.
    fn unit(self, frame: &[u8]) -> u8 {
        match self {
            Framing::Tcp => frame[6],
            Framing::Rtu => frame[0],
        }
    }

    /// Applies a wire fault to an answer frame.
    fn corrupt(self, fault: Fault, frame: &mut [u8]) {
        match (fault, self) {
            (Fault::Garbage, _) => frame.iter_mut().for_each(|b| *b ^= 0xA5),
            (Fault::BadCrc, Framing::Rtu) => {
                if let Some(last) = frame.last_mut() {
                    *last ^= 0xFF;
                }
            }
            (Fault::BadCrc, Framing::Tcp) => frame[2] ^= 0xFF,
            (Fault::Silent | Fault::Exception(_) | Fault::Short, _) => {}
        }
    }
}

/// Carries requests from `client` to the devices' server and answers back, mangling the answers
/// of devices with a wire fault. Ends when either side closes.
pub(crate) async fn line(
    client: impl AsyncRead + AsyncWrite,
    server: DuplexStream,
    framing: Framing,
    bank: Arc<Mutex<Bank>>,
) {
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let (mut server_rx, mut server_tx) = tokio::io::split(server);
    let requests = tokio::io::copy(&mut client_rx, &mut server_tx);
    let answers = async {
        let mut pending = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            let n = server_rx.read(&mut chunk).await?;
            if n == 0 {
                return std::io::Result::Ok(());
            }
            pending.extend_from_slice(&chunk[..n]);
            while let Some(len) = framing.frame_len(&pending) {
                let mut frame: Vec<u8> = pending.drain(..len).collect();
                if let Some(fault) = lock(&bank).wire_fault(framing.unit(&frame)) {
                    framing.corrupt(fault, &mut frame);
                }
                client_tx.write_all(&frame).await?;
            }
        }
    };
    // Either side closing ends the line; the error, if any, is the client's business.
    tokio::select! {
        _ = requests => {}
        _ = answers => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_answers_into_frames() {
        // Read holding registers, 2 registers, from unit 7: 7 + 2×2 + 2 CRC bytes... in RTU.
        let rtu = [7, 3, 4, 0, 1, 0, 2, 0xAA, 0xBB, 7];
        assert_eq!(Framing::Rtu.frame_len(&rtu), Some(9));
        assert_eq!(Framing::Rtu.frame_len(&rtu[..8]), None);
        assert_eq!(Framing::Rtu.frame_len(&[7, 0x83, 2, 0xC0, 0xF1]), Some(5));
        assert_eq!(
            Framing::Rtu.frame_len(&[7, 0x10, 0, 1, 0, 2, 0, 0]),
            Some(8)
        );
        // TCP: transaction 1, protocol 0, length 7 (unit + 6 PDU bytes).
        let tcp = [0, 1, 0, 0, 0, 7, 9, 3, 4, 0, 1, 0, 2];
        assert_eq!(Framing::Tcp.frame_len(&tcp), Some(13));
        assert_eq!(Framing::Tcp.unit(&tcp), 9);
        assert_eq!(Framing::Tcp.frame_len(&tcp[..12]), None);
    }

    #[test]
    fn bad_crc_breaks_the_check_only() {
        let mut rtu = [7, 3, 2, 0, 1, 0x31, 0x84];
        Framing::Rtu.corrupt(Fault::BadCrc, &mut rtu);
        assert_eq!(rtu, [7, 3, 2, 0, 1, 0x31, 0x7B]);
        let mut tcp = [0, 1, 0, 0, 0, 5, 9, 3, 2, 0, 1];
        Framing::Tcp.corrupt(Fault::BadCrc, &mut tcp);
        assert_eq!(tcp, [0, 1, 0xFF, 0, 0, 5, 9, 3, 2, 0, 1]);
    }
}
