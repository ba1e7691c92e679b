//! Samples of one channel packed into a block: each timestamp as the change of the interval
//! before it, each power as the change from the sample before, both as zigzag varints. At a steady
//! 1 Hz a timestamp costs one byte and a household's power two or three.

use daisee_hal::{MilliWatts, Timestamp};

/// A block that does not decode: the file was damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sample block is damaged at byte {0}")]
pub struct Damaged(pub usize);

/// Encodes samples in time order; the first timestamp is kept by the caller (the block's key).
pub(crate) fn encode(samples: &[(Timestamp, MilliWatts)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 4);
    let Some(&(first, _)) = samples.first() else {
        return out;
    };
    let (mut last_t, mut last_dt, mut last_p) = (first.0, 0i64, 0i64);
    for &(t, p) in samples {
        let dt = t.0 - last_t;
        put(&mut out, dt.wrapping_sub(last_dt));
        put(&mut out, p.0.wrapping_sub(last_p));
        (last_t, last_dt, last_p) = (t.0, dt, p.0);
    }
    out
}

/// Decodes a block whose first sample is at `start`.
pub(crate) fn decode(
    start: Timestamp,
    data: &[u8],
) -> Result<Vec<(Timestamp, MilliWatts)>, Damaged> {
    let mut samples = Vec::with_capacity(data.len() / 3);
    let (mut t, mut dt, mut p) = (start.0, 0i64, 0i64);
    let mut at = 0;
    while at < data.len() {
        dt = dt.wrapping_add(get(data, &mut at)?);
        p = p.wrapping_add(get(data, &mut at)?);
        t = t.wrapping_add(dt);
        samples.push((Timestamp(t), MilliWatts(p)));
    }
    Ok(samples)
}

fn put(out: &mut Vec<u8>, value: i64) {
    let mut z = ((value << 1) ^ (value >> 63)) as u64;
    while z >= 0x80 {
        out.push(z as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn get(data: &[u8], at: &mut usize) -> Result<i64, Damaged> {
    let start = *at;
    let mut z = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(*at).ok_or(Damaged(start))?;
        *at += 1;
        z |= u64::from(byte & 0x7F) << shift;
        if byte < 0x80 {
            return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    Err(Damaged(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_including_extremes() {
        let samples = vec![
            (Timestamp(1_000), MilliWatts(230_000)),
            (Timestamp(2_000), MilliWatts(231_500)),
            (Timestamp(3_000), MilliWatts(-4_000_000)),
            (Timestamp(4_003), MilliWatts(i64::MAX)),
            (Timestamp(4_003), MilliWatts(i64::MIN)),
            (Timestamp(90_000), MilliWatts(0)),
        ];
        let data = encode(&samples);
        assert_eq!(decode(Timestamp(1_000), &data), Ok(samples));
    }

    #[test]
    fn a_steady_second_costs_one_byte_of_time() {
        let samples: Vec<_> = (0..60)
            .map(|i| (Timestamp(i * 1000), MilliWatts(500_000 + (i % 3) * 40)))
            .collect();
        // First sample: 1 + 3 bytes; the second sets the interval (2 bytes); then 1 byte of
        // time and 1 or 2 of power each.
        let data = encode(&samples);
        assert!(data.len() <= 4 + 4 + 58 * 3, "{}", data.len());
        assert_eq!(decode(Timestamp(0), &data).unwrap(), samples);
    }

    #[test]
    fn a_truncated_block_is_damaged_not_a_panic() {
        let data = encode(&[(Timestamp(0), MilliWatts(1 << 40))]);
        assert_eq!(
            decode(Timestamp(0), &data[..data.len() - 1]),
            Err(Damaged(1))
        );
        assert!(decode(Timestamp(0), &[0xFF; 11]).is_err());
    }
}
