//! A classic-BPF interpreter for seccomp programs: runs a program on a `seccomp_data` the way
//! the kernel does, so that verdicts can be checked without installing anything.
//!
//! It implements every instruction the kernel's seccomp checker accepts (loads from
//! `seccomp_data`, scratch memory, ALU, jumps, returns, TAX/TXA) and rejects the rest.
//!
//! ```
//! use warren_sandbox::seccomp::eval::{SeccompData, run};
//! use warren_sandbox::syscalls::Arch;
//! let program = warren_sandbox::seccomp::builtin_filter("agent").unwrap().program;
//! let mkdir = SeccompData::new(Arch::X86_64, 83, [0; 6]);
//! # if cfg!(target_arch = "x86_64") {
//! assert_eq!(run(&program, &mkdir).unwrap(), libc::SECCOMP_RET_ALLOW);
//! # }
//! ```

use seccompiler::sock_filter;

use crate::filter::Action;
use crate::syscalls::Arch;

/// Size of `struct seccomp_data`.
pub const SECCOMP_DATA_LEN: u32 = 64;

/// The input of a seccomp program (`struct seccomp_data`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeccompData {
    /// Syscall number.
    pub nr: u32,
    /// `AUDIT_ARCH_*` of the calling ABI.
    pub arch: u32,
    /// Address of the syscall instruction.
    pub instruction_pointer: u64,
    /// Arguments.
    pub args: [u64; 6],
}

impl SeccompData {
    /// A native syscall of `arch`.
    pub fn new(arch: Arch, nr: u32, args: [u64; 6]) -> Self {
        SeccompData {
            nr,
            arch: arch.audit_arch(),
            instruction_pointer: 0,
            args,
        }
    }

    /// The 32-bit word at byte offset `k`, as a little-endian kernel lays the struct out.
    fn word(&self, k: u32) -> Option<u32> {
        if k % 4 != 0 || k >= SECCOMP_DATA_LEN {
            return None;
        }
        let half = |v: u64, k: u32| {
            if k % 8 == 0 {
                v as u32
            } else {
                (v >> 32) as u32
            }
        };
        Some(match k {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => half(self.instruction_pointer, k),
            _ => half(self.args[((k - 16) / 8) as usize], k),
        })
    }
}

/// Why a program could not be run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The program counter left the program (no return reached).
    #[error("run a seccomp program: fell off its end at instruction {0}")]
    OutOfBounds(usize),
    /// An instruction the seccomp checker would reject.
    #[error("run a seccomp program: instruction {pc} has unsupported code {code:#06x}")]
    BadInstruction {
        /// Index of the instruction.
        pc: usize,
        /// Its opcode.
        code: u16,
    },
    /// A load outside `seccomp_data` or misaligned, or outside scratch memory.
    #[error("run a seccomp program: instruction {pc} loads from bad offset {k}")]
    BadOffset {
        /// Index of the instruction.
        pc: usize,
        /// The offset.
        k: u32,
    },
}

/// Runs `program` on `data`; returns the value the program returns.
pub fn run(program: &[sock_filter], data: &SeccompData) -> Result<u32, EvalError> {
    let mut a: u32 = 0;
    let mut x: u32 = 0;
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    loop {
        let ins = program.get(pc).ok_or(EvalError::OutOfBounds(pc))?;
        let (code, k) = (ins.code, ins.k);
        let bad = EvalError::BadInstruction { pc, code };
        let at = pc;
        let scratch = |k: u32| -> Result<usize, EvalError> {
            if k < 16 {
                Ok(k as usize)
            } else {
                Err(EvalError::BadOffset { pc: at, k })
            }
        };
        pc += 1;
        match code & 0x07 {
            // BPF_LD
            0x00 => match code {
                0x20 => a = data.word(k).ok_or(EvalError::BadOffset { pc: at, k })?,
                0x80 => a = SECCOMP_DATA_LEN,
                0x00 => a = k,
                0x60 => a = mem[scratch(k)?],
                _ => return Err(bad),
            },
            // BPF_LDX
            0x01 => match code {
                0x81 => x = SECCOMP_DATA_LEN,
                0x01 => x = k,
                0x61 => x = mem[scratch(k)?],
                _ => return Err(bad),
            },
            // BPF_ST / BPF_STX
            0x02 => mem[scratch(k)?] = a,
            0x03 => mem[scratch(k)?] = x,
            // BPF_ALU
            0x04 => {
                let src = if code & 0x08 != 0 { x } else { k };
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 => {
                        if src == 0 {
                            return Ok(0);
                        }
                        a / src
                    }
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.checked_shl(src).unwrap_or(0),
                    0x70 => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => {
                        if src == 0 {
                            return Ok(0);
                        }
                        a % src
                    }
                    0xa0 => a ^ src,
                    _ => return Err(bad),
                };
            }
            // BPF_JMP
            0x05 => {
                let src = if code & 0x08 != 0 { x } else { k };
                let taken = match code & 0xf0 {
                    0x00 => {
                        pc += k as usize;
                        continue;
                    }
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    _ => return Err(bad),
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            // BPF_RET
            0x06 => {
                return match code & 0x18 {
                    0x00 => Ok(k),
                    0x10 => Ok(a),
                    _ => Err(bad),
                };
            }
            // BPF_MISC: TAX / TXA
            0x07 => match code {
                0x07 => x = a,
                0x87 => a = x,
                _ => return Err(bad),
            },
            _ => return Err(bad),
        }
    }
}

/// Runs `program` and decodes its verdict.
pub fn verdict(program: &[sock_filter], data: &SeccompData) -> Result<Option<Action>, EvalError> {
    run(program, data).map(Action::from_ret_value)
}

/// The verdict of several stacked filters, as the kernel combines them: every filter runs
/// and the action of highest precedence wins (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO >
/// USER_NOTIF > TRACE > LOG > ALLOW).
pub fn run_stack(programs: &[&[sock_filter]], data: &SeccompData) -> Result<u32, EvalError> {
    let mut best = libc::SECCOMP_RET_ALLOW;
    for p in programs {
        let ret = run(p, data)?;
        let action = |r: u32| (r & libc::SECCOMP_RET_ACTION_FULL) as i32;
        if action(ret) < action(best) {
            best = ret;
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(code: u16, k: u32) -> sock_filter {
        sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }
    fn j(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
        sock_filter { code, jt, jf, k }
    }

    #[test]
    fn loads_words_little_endian() {
        let d = SeccompData {
            nr: 7,
            arch: 0xc000_003e,
            instruction_pointer: 0x1111_2222_3333_4444,
            args: [0xaaaa_bbbb_cccc_dddd, 0, 0, 0, 0, 6],
        };
        assert_eq!(d.word(0), Some(7));
        assert_eq!(d.word(4), Some(0xc000_003e));
        assert_eq!(d.word(8), Some(0x3333_4444));
        assert_eq!(d.word(12), Some(0x1111_2222));
        assert_eq!(d.word(16), Some(0xcccc_dddd));
        assert_eq!(d.word(20), Some(0xaaaa_bbbb));
        assert_eq!(d.word(56), Some(6));
        assert_eq!(d.word(64), None);
        assert_eq!(d.word(2), None);
    }

    #[test]
    fn alu_jumps_scratch_and_returns() {
        // A = nr; M[0] = A; A += 5; X = A; A = M[0]; if A & 4 goto +1; ret 1; ret X*2
        let p = [
            s(0x20, 0),
            s(0x02, 0),
            s(0x04, 5),
            s(0x07, 0),
            s(0x60, 0),
            j(0x45, 4, 1, 0),
            s(0x06, 1),
            s(0x87, 0),
            s(0x24, 2),
            s(0x16, 0),
        ];
        assert_eq!(run(&p, &SeccompData::new(Arch::X86_64, 4, [0; 6])), Ok(18));
        assert_eq!(run(&p, &SeccompData::new(Arch::X86_64, 3, [0; 6])), Ok(1));
    }

    #[test]
    fn rejects_bad_programs() {
        let d = SeccompData::new(Arch::X86_64, 0, [0; 6]);
        assert_eq!(run(&[s(0x20, 0)], &d), Err(EvalError::OutOfBounds(1)));
        assert_eq!(
            run(&[s(0x20, 66)], &d),
            Err(EvalError::BadOffset { pc: 0, k: 66 })
        );
        assert!(matches!(
            run(&[s(0x28, 0)], &d),
            Err(EvalError::BadInstruction { .. })
        ));
    }

    #[test]
    fn stack_precedence() {
        let allow = [s(0x06, libc::SECCOMP_RET_ALLOW)];
        let errno = [s(0x06, libc::SECCOMP_RET_ERRNO | 1)];
        let kill = [s(0x06, libc::SECCOMP_RET_KILL_PROCESS)];
        let log = [s(0x06, libc::SECCOMP_RET_LOG)];
        let d = SeccompData::new(Arch::X86_64, 0, [0; 6]);
        assert_eq!(
            run_stack(&[&allow, &errno], &d),
            Ok(libc::SECCOMP_RET_ERRNO | 1)
        );
        assert_eq!(
            run_stack(&[&errno, &kill], &d),
            Ok(libc::SECCOMP_RET_KILL_PROCESS)
        );
        assert_eq!(run_stack(&[&allow, &log], &d), Ok(libc::SECCOMP_RET_LOG));
    }
}
