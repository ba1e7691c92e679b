//! Coalescing the registers of a poll into as few read requests as the protocol allows.

use crate::profile::{Function, MAX_REGISTERS_PER_READ, Profile, Scale};

/// One read request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Holding or input registers.
    pub function: Function,
    /// First register address.
    pub start: u16,
    /// Number of registers, at most 125.
    pub count: u16,
}

/// The requests that read everything a profile needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadPlan {
    /// The requests, by function and address.
    pub reads: Vec<Read>,
}

impl ReadPlan {
    /// The fewest requests covering `spans` (function, first register, register count) such that no
    /// request exceeds `max_read` registers (125 at most) or reads across more than `max_gap`
    /// unused registers.
    ///
    /// Spans sorted by start are taken greedily, each request extended as far as the limits allow;
    /// for intervals on a line this is optimal.
    pub fn coalesce(
        spans: impl IntoIterator<Item = (Function, u16, u16)>,
        max_gap: u16,
        max_read: u16,
    ) -> Self {
        let max_read = u32::from(max_read.min(MAX_REGISTERS_PER_READ));
        let mut spans: Vec<(Function, u32, u32)> = spans
            .into_iter()
            .map(|(f, start, count)| (f, u32::from(start), u32::from(start) + u32::from(count)))
            .collect();
        spans.sort_unstable();
        let mut reads: Vec<Read> = Vec::new();
        let mut open: Option<(Function, u32, u32)> = None;
        for (function, start, end) in spans {
            open = match open {
                Some((f, s, e))
                    if f == function
                        && start <= e + u32::from(max_gap)
                        && end.max(e) - s <= max_read =>
                {
                    Some((f, s, e.max(end)))
                }
                previous => {
                    reads.extend(previous.map(read));
                    Some((function, start, end))
                }
            };
        }
        reads.extend(open.map(read));
        Self { reads }
    }

    /// The plan for a profile's points and their scale-factor registers.
    pub fn for_profile(profile: &Profile) -> Self {
        Self::coalesce(spans(profile), profile.max_gap, profile.max_read)
    }

    /// One request per point and per scale factor, the way most tools read: the baseline for
    /// measuring what coalescing saves.
    pub fn one_per_value(profile: &Profile) -> Self {
        let mut reads: Vec<Read> = spans(profile)
            .map(|(function, start, count)| Read {
                function,
                start,
                count,
            })
            .collect();
        reads.sort_unstable_by_key(|r| (r.function, r.start, r.count));
        reads.dedup();
        Self { reads }
    }
}

fn read((function, start, end): (Function, u32, u32)) -> Read {
    Read {
        function,
        start: start as u16,
        count: (end - start) as u16,
    }
}

fn spans(profile: &Profile) -> impl Iterator<Item = (Function, u16, u16)> + '_ {
    profile.points.iter().flat_map(|p| {
        let value = (p.function, p.address, p.data_type.registers());
        let factor = match p.scaling() {
            Scale::Register(address) => Some((p.function, address, 1)),
            Scale::Factor(_) => None,
        };
        std::iter::once(value).chain(factor)
    })
}

/// Register values read by a plan, looked up by function and address.
#[derive(Debug, Clone, Default)]
pub struct Registers {
    blocks: Vec<(Read, Vec<u16>)>,
}

impl Registers {
    /// Adds the answer to one read.
    pub fn insert(&mut self, read: Read, words: Vec<u16>) {
        self.blocks.push((read, words));
    }

    /// The `count` registers from `address`, if a read covered them.
    pub fn get(&self, function: Function, address: u16, count: u16) -> Option<&[u16]> {
        self.blocks.iter().find_map(|(read, words)| {
            let offset = address.checked_sub(read.start)?;
            let end = usize::from(offset) + usize::from(count);
            (read.function == function && end <= words.len())
                .then(|| &words[usize::from(offset)..end])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Function = Function::Input;
    const H: Function = Function::Holding;

    fn plan(spans: &[(Function, u16, u16)], gap: u16) -> Vec<(Function, u16, u16)> {
        ReadPlan::coalesce(spans.iter().copied(), gap, 125)
            .reads
            .iter()
            .map(|r| (r.function, r.start, r.count))
            .collect()
    }

    #[test]
    fn neighbours_merge_and_functions_do_not() {
        assert_eq!(
            plan(&[(I, 0, 2), (I, 2, 2), (H, 4, 2), (I, 6, 2)], 0),
            [(H, 4, 2), (I, 0, 4), (I, 6, 2)]
        );
    }

    #[test]
    fn gaps_up_to_the_limit_are_read_across() {
        assert_eq!(plan(&[(I, 0, 2), (I, 12, 2)], 10), [(I, 0, 14)]);
        assert_eq!(plan(&[(I, 0, 2), (I, 13, 2)], 10), [(I, 0, 2), (I, 13, 2)]);
    }

    #[test]
    fn no_request_exceeds_125_registers() {
        let spans: Vec<_> = (0..200).map(|i| (I, i * 2, 2)).collect();
        let reads = plan(&spans, 0);
        assert_eq!(
            reads,
            [(I, 0, 124), (I, 124, 124), (I, 248, 124), (I, 372, 28)]
        );
    }

    #[test]
    fn a_device_limit_below_125_is_kept() {
        let spans: Vec<_> = (0..12).map(|i| (I, i * 2, 2)).collect();
        let reads: Vec<_> = ReadPlan::coalesce(spans, 0, 20)
            .reads
            .iter()
            .map(|r| (r.start, r.count))
            .collect();
        assert_eq!(reads, [(0, 20), (20, 4)]);
    }

    #[test]
    fn overlapping_and_unsorted_spans_are_covered_once() {
        assert_eq!(plan(&[(I, 10, 4), (I, 0, 2), (I, 11, 1)], 8), [(I, 0, 14)]);
    }

    #[test]
    fn registers_are_found_inside_their_block() {
        let mut regs = Registers::default();
        regs.insert(
            Read {
                function: I,
                start: 10,
                count: 4,
            },
            vec![1, 2, 3, 4],
        );
        assert_eq!(regs.get(I, 11, 2), Some(&[2, 3][..]));
        assert_eq!(regs.get(I, 13, 2), None);
        assert_eq!(regs.get(H, 11, 1), None);
        assert_eq!(regs.get(I, 9, 1), None);
    }
}
