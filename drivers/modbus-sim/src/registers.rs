//! The register file of a simulated device: only the registers its map defines exist, as on a
//! real device, which answers "illegal data address" to a read that touches any other.

use std::collections::BTreeMap;

use daisee_modbus::profile::Function;
use tokio_modbus::ExceptionCode;

/// The holding and input registers a simulated device defines, with their current values.
#[derive(Debug, Clone, Default)]
pub struct RegisterMap {
    holding: BTreeMap<u16, u16>,
    input: BTreeMap<u16, u16>,
}

impl RegisterMap {
    /// Defines (or overwrites) registers from `address` on, up to the last address.
    pub fn set(&mut self, function: Function, address: u16, words: &[u16]) {
        let table = self.table_mut(function);
        // Registers past the last address do not exist; a write running past it stops there.
        for (address, word) in (u32::from(address)..=0xFFFF).zip(words) {
            table.insert(address as u16, *word);
        }
    }

    /// The values of `count` registers from `address`, all of which must be defined.
    pub fn read(
        &self,
        function: Function,
        address: u16,
        count: u16,
    ) -> Result<Vec<u16>, ExceptionCode> {
        let table = match function {
            Function::Holding => &self.holding,
            Function::Input => &self.input,
        };
        let end = u32::from(address) + u32::from(count);
        if end > 0x1_0000 {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        (u32::from(address)..end)
            .map(|a| {
                table
                    .get(&(a as u16))
                    .copied()
                    .ok_or(ExceptionCode::IllegalDataAddress)
            })
            .collect()
    }

    fn table_mut(&mut self, function: Function) -> &mut BTreeMap<u16, u16> {
        match function {
            Function::Holding => &mut self.holding,
            Function::Input => &mut self.input,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_defined_registers() {
        let mut map = RegisterMap::default();
        map.set(Function::Input, 10, &[1, 2, 3]);
        assert_eq!(map.read(Function::Input, 10, 3), Ok(vec![1, 2, 3]));
        assert_eq!(
            map.read(Function::Input, 10, 4),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            map.read(Function::Holding, 10, 1),
            Err(ExceptionCode::IllegalDataAddress)
        );
        map.set(Function::Holding, 0xFFFF, &[7]);
        assert_eq!(map.read(Function::Holding, 0xFFFF, 1), Ok(vec![7]));
        assert_eq!(
            map.read(Function::Holding, 0xFFFF, 2),
            Err(ExceptionCode::IllegalDataAddress)
        );
    }
}
