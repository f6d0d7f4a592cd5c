//! [`Filter`] → classic BPF.
//!
//! seccompiler 0.5 compiles each argument condition and each rule (its
//! [`SeccompRule`]/[`SeccompCondition`] code is used unchanged), but its filter layout has a
//! single match action and tests syscall numbers one after the other. Profiles need one
//! action per rule, and podman's default profile has 300+ syscalls, so the dispatch is laid
//! out here as a binary search:
//!
//! ```text
//! prologue:  A = arch; if A != AUDIT_ARCH → RET foreign_abi_action
//!            A = nr;   [x86_64] if A >= X32_SYSCALL_BIT → RET foreign_abi_action
//!                      [deny_above] if A > bound → RET its action
//! tree:      binary search over the syscall-number intervals (JGE on interval starts);
//!            each leaf is `RET action` for syscalls decided by the number alone, or
//!            `JA block` for syscalls with argument conditions
//! blocks:    [rule 1 conditions][RET action 1][rule 2 …][RET action 2]…[RET fallback]
//! ```
//!
//! Consecutive syscall numbers with the same verdict share one interval, so podman's
//! default profile compiles to 153 instructions (libseccomp: 1125): a syscall is decided
//! after about 8 comparisons instead of up to 350, and the smaller program also loads
//! faster.

use seccompiler::{
    BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule, sock_filter,
};

use super::error::CompileError;
use super::ir::{Action, ArgCondition, CmpOp, Filter, MAX_ERRNO, Rule, Width};
use crate::syscalls::{Arch, X32_SYSCALL_BIT};

/// Maximum number of instructions the kernel accepts in one program (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;

/// `BPF_LD | BPF_W | BPF_ABS`: load a 32-bit word of `seccomp_data`.
pub const BPF_LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JA`: unconditional jump by `k`.
pub const BPF_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub const BPF_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K`.
pub const BPF_JGT_K: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K`.
pub const BPF_JGE_K: u16 = 0x35;
/// `BPF_RET | BPF_K`: return `k`.
pub const BPF_RET_K: u16 = 0x06;

/// Offset of `nr` in `struct seccomp_data`.
pub const SECCOMP_DATA_NR: u32 = 0;
/// Offset of `arch` in `struct seccomp_data`.
pub const SECCOMP_DATA_ARCH: u32 = 4;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn ret(action: Action) -> sock_filter {
    stmt(BPF_RET_K, action.ret_value())
}

/// An instruction whose jump target may still be symbolic.
#[derive(Clone, Debug)]
enum Ins {
    Fixed(sock_filter),
    /// `JA` to the start of block `n`.
    JaBlock(usize),
}

/// How the number alone decides a syscall, or where its conditions are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Ret(Action),
    Block(usize),
}

/// Compiles `filter` to a seccomp BPF program.
///
/// Fails on a filter that confines nothing (no rule whose action differs from the default):
/// such a filter is always a mistake upstream, and installing it would silently run the
/// workload unconfined.
pub fn compile(filter: &Filter) -> Result<BpfProgram, CompileError> {
    validate(filter)?;
    if filter.effective_rules() == 0 {
        return Err(CompileError::Empty);
    }

    // Decide what each syscall number maps to; conditional rules go to blocks.
    let mut blocks: Vec<(Vec<Rule>, Action)> = Vec::new();
    let mut targets: Vec<(u32, Target)> = Vec::with_capacity(filter.rules.len());
    for (&nr, rules) in &filter.rules {
        let first_unconditional = rules.iter().position(|r| r.conditions.is_empty());
        let (conditional, fallback) = match first_unconditional {
            Some(i) => (&rules[..i], rules[i].action),
            None => (&rules[..], filter.default_action),
        };
        let target = if conditional.iter().all(|r| r.action == fallback) {
            Target::Ret(fallback)
        } else {
            blocks.push((conditional.to_vec(), fallback));
            Target::Block(blocks.len() - 1)
        };
        if target != Target::Ret(filter.default_action) {
            targets.push((nr, target));
        }
    }

    let intervals = intervals(&targets, filter.default_action);
    let mut code = prologue(filter);
    code.extend(tree(&intervals));

    // Lay the blocks out after the tree and resolve the jumps into them.
    let mut block_start = Vec::with_capacity(blocks.len());
    let mut block_code: Vec<sock_filter> = Vec::new();
    for (rules, fallback) in blocks {
        block_start.push(code.len() + block_code.len());
        for rule in rules {
            block_code.extend(rule_bpf(&rule)?);
            block_code.push(ret(rule.action));
        }
        block_code.push(ret(fallback));
    }
    let total = code.len() + block_code.len();
    if total > BPF_MAXINSNS {
        return Err(CompileError::TooLarge { len: total });
    }

    let mut program = Vec::with_capacity(total);
    for (pos, ins) in code.into_iter().enumerate() {
        program.push(match ins {
            Ins::Fixed(i) => i,
            Ins::JaBlock(b) => {
                let offset = block_start[b] - pos - 1;
                stmt(
                    BPF_JA,
                    u32::try_from(offset).map_err(|_| CompileError::TooLarge { len: total })?,
                )
            }
        });
    }
    program.extend(block_code);
    Ok(program)
}

fn validate(filter: &Filter) -> Result<(), CompileError> {
    let check_action = |a: Action| match a {
        Action::Errno(e) | Action::Trace(e) if e > MAX_ERRNO => Err(CompileError::ErrnoRange {
            value: u32::from(e),
        }),
        _ => Ok(()),
    };
    check_action(filter.default_action)?;
    if let Some((_, a)) = filter.deny_above {
        check_action(a)?;
    }
    for (&nr, rules) in &filter.rules {
        for rule in rules {
            check_action(rule.action)?;
            for c in &rule.conditions {
                if c.index > 5 {
                    return Err(CompileError::ArgIndex { nr, index: c.index });
                }
                let mask = match c.op {
                    CmpOp::MaskedEq { mask } => mask,
                    _ => 0,
                };
                if c.width == Width::Bits32
                    && (c.value > u64::from(u32::MAX) || mask > u64::from(u32::MAX))
                {
                    return Err(CompileError::ValueTooWide { nr, condition: *c });
                }
            }
        }
    }
    Ok(())
}

fn prologue(filter: &Filter) -> Vec<Ins> {
    let mut p = vec![
        Ins::Fixed(stmt(BPF_LD_W_ABS, SECCOMP_DATA_ARCH)),
        Ins::Fixed(jump(BPF_JEQ_K, filter.arch.audit_arch(), 1, 0)),
        Ins::Fixed(ret(filter.foreign_abi_action)),
        Ins::Fixed(stmt(BPF_LD_W_ABS, SECCOMP_DATA_NR)),
    ];
    if filter.arch == Arch::X86_64 {
        // x32 syscalls carry AUDIT_ARCH_X86_64 and the x32 bit in their number.
        p.push(Ins::Fixed(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1)));
        p.push(Ins::Fixed(ret(filter.foreign_abi_action)));
    }
    if let Some((bound, action)) = filter.deny_above {
        p.push(Ins::Fixed(jump(BPF_JGT_K, bound, 0, 1)));
        p.push(Ins::Fixed(ret(action)));
    }
    p
}

/// Splits the number space `[0, 2^32)` into intervals with one target each; returns each
/// interval's start and target, in order, neighbours with equal targets merged.
fn intervals(targets: &[(u32, Target)], default: Action) -> Vec<(u32, Target)> {
    let mut out: Vec<(u32, Target)> = vec![(0, Target::Ret(default))];
    let mut push = |start: u32, t: Target| {
        let last = out.len() - 1;
        if out[last].0 == start {
            out[last].1 = t;
            // The replaced interval may now equal its predecessor.
            if last > 0 && out[last - 1].1 == t {
                out.pop();
            }
        } else if out[last].1 != t {
            out.push((start, t));
        }
    };
    for &(nr, t) in targets {
        push(nr, t);
        if let Some(next) = nr.checked_add(1) {
            push(next, Target::Ret(default));
        }
    }
    out
}

/// Binary search over `intervals` (non-empty). Jumps inside the tree are relative and
/// known; jumps to blocks stay symbolic until the blocks are placed.
fn tree(intervals: &[(u32, Target)]) -> Vec<Ins> {
    if let [(_, target)] = intervals {
        return vec![match *target {
            Target::Ret(a) => Ins::Fixed(ret(a)),
            Target::Block(b) => Ins::JaBlock(b),
        }];
    }
    let mid = intervals.len() / 2;
    let pivot = intervals[mid].0;
    let left = tree(&intervals[..mid]);
    let right = tree(&intervals[mid..]);
    let mut out = Vec::with_capacity(left.len() + right.len() + 2);
    match u8::try_from(left.len()) {
        Ok(skip) => out.push(Ins::Fixed(jump(BPF_JGE_K, pivot, skip, 0))),
        Err(_) => {
            // Too far for an 8-bit offset: go through a 32-bit JA.
            out.push(Ins::Fixed(jump(BPF_JGE_K, pivot, 0, 1)));
            out.push(Ins::Fixed(stmt(BPF_JA, left.len() as u32)));
        }
    }
    out.extend(left);
    out.extend(right);
    out
}

/// A conditional rule's code from seccompiler: falls through when every condition holds,
/// jumps just past the instruction that follows it otherwise.
fn rule_bpf(rule: &Rule) -> Result<BpfProgram, CompileError> {
    let conditions = rule
        .conditions
        .iter()
        .map(condition)
        .collect::<Result<Vec<_>, _>>()?;
    let rule = SeccompRule::new(conditions).map_err(|e| CompileError::Backend(e.to_string()))?;
    let bpf: BpfProgram = rule.into();
    // seccompiler starts a rule with `JA 1; JA <past the rule>`. Nothing jumps to the
    // second one and its target is one instruction further than the next rule, which is
    // out of the program (and rejected by the kernel) for the last rule of the last block:
    // drop both.
    match bpf.get(..2) {
        Some([first, second]) if *first == stmt(BPF_JA, 1) && second.code == BPF_JA => {
            Ok(bpf[2..].to_vec())
        }
        _ => Err(CompileError::Backend(
            "unexpected rule layout from seccompiler".to_owned(),
        )),
    }
}

fn condition(c: &ArgCondition) -> Result<SeccompCondition, CompileError> {
    let len = match c.width {
        Width::Bits32 => SeccompCmpArgLen::Dword,
        Width::Bits64 => SeccompCmpArgLen::Qword,
    };
    let op = match c.op {
        CmpOp::Eq => SeccompCmpOp::Eq,
        CmpOp::Ne => SeccompCmpOp::Ne,
        CmpOp::Lt => SeccompCmpOp::Lt,
        CmpOp::Le => SeccompCmpOp::Le,
        CmpOp::Gt => SeccompCmpOp::Gt,
        CmpOp::Ge => SeccompCmpOp::Ge,
        CmpOp::MaskedEq { mask } => SeccompCmpOp::MaskedEq(mask),
    };
    SeccompCondition::new(c.index, len, op, c.value)
        .map_err(|e| CompileError::Backend(e.to_string()))
}

/// Structural checks on a program from outside (e.g. a cache file): non-empty, within the
/// kernel's size limit, every jump lands inside the program, and the last instruction
/// returns. The kernel verifies this too; checking first gives a clear error.
pub fn check_program(program: &[sock_filter]) -> Result<(), CompileError> {
    let len = program.len();
    if len == 0 {
        return Err(CompileError::Empty);
    }
    if len > BPF_MAXINSNS {
        return Err(CompileError::TooLarge { len });
    }
    for (pc, ins) in program.iter().enumerate() {
        let class = ins.code & 0x07;
        if class == 0x05 {
            let reach = if ins.code == BPF_JA {
                pc as u64 + 1 + u64::from(ins.k)
            } else {
                pc as u64 + 1 + u64::from(ins.jt.max(ins.jf))
            };
            if reach >= len as u64 {
                return Err(CompileError::Malformed {
                    pc,
                    reason: "jump past the end",
                });
            }
        }
    }
    if program[len - 1].code & 0x07 != 0x06 {
        return Err(CompileError::Malformed {
            pc: len - 1,
            reason: "the last instruction does not return",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::eval::{SeccompData, run};
    use crate::syscalls::{AUDIT_ARCH_I386, Arch};

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[self.below(xs.len() as u64) as usize]
        }
    }

    const VALUES: [u64; 9] = [
        0,
        1,
        2,
        3,
        0x7fff_ffff,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0003,
        u64::MAX,
    ];

    fn random_filter(g: &mut Gen, arch: Arch, syscalls: u64) -> Filter {
        let actions = [
            Action::Allow,
            Action::Errno(1),
            Action::Errno(38),
            Action::KillProcess,
            Action::Trap,
            Action::Log,
        ];
        let mut f = Filter::new(arch, g.pick(&actions));
        if g.below(3) == 0 {
            f.deny_above = Some((400, Action::Errno(38)));
        }
        for _ in 0..syscalls {
            let nr = g.below(460) as u32;
            for _ in 0..=g.below(3) {
                let conditions = (0..g.below(4))
                    .map(|_| {
                        let width = if g.below(2) == 0 {
                            Width::Bits32
                        } else {
                            Width::Bits64
                        };
                        let mut value = g.pick(&VALUES);
                        let mut op = g.pick(&[
                            CmpOp::Eq,
                            CmpOp::Ne,
                            CmpOp::Lt,
                            CmpOp::Le,
                            CmpOp::Gt,
                            CmpOp::Ge,
                        ]);
                        if g.below(4) == 0 {
                            op = CmpOp::MaskedEq {
                                mask: g.pick(&VALUES),
                            };
                        }
                        if width == Width::Bits32 {
                            value &= 0xffff_ffff;
                            if let CmpOp::MaskedEq { mask } = &mut op {
                                *mask &= 0xffff_ffff;
                            }
                        }
                        ArgCondition {
                            index: g.below(6) as u8,
                            op,
                            value,
                            width,
                        }
                    })
                    .collect();
                f.push_rule(
                    nr,
                    Rule {
                        conditions,
                        action: g.pick(&actions),
                    },
                );
            }
        }
        f
    }

    /// The compiled program agrees with the reference semantics ([`Filter::decide`]) on
    /// random filters and inputs, including boundary argument values and foreign ABIs.
    #[test]
    fn compiled_program_matches_reference_semantics() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for round in 0..300 {
            let arch = if round % 4 == 3 {
                Arch::Aarch64
            } else {
                Arch::X86_64
            };
            let size = if round % 10 == 0 {
                300
            } else {
                1 + g.below(40)
            };
            let filter = random_filter(&mut g, arch, size);
            let program = match compile(&filter) {
                Ok(p) => p,
                Err(CompileError::Empty) => {
                    assert_eq!(filter.effective_rules(), 0);
                    continue;
                }
                Err(e) => panic!("round {round}: {e}"),
            };
            if let Err(e) = check_program(&program) {
                if let CompileError::Malformed { pc, .. } = e {
                    for (i, ins) in program
                        .iter()
                        .enumerate()
                        .skip(pc.saturating_sub(30))
                        .take(40)
                    {
                        eprintln!("{i}: {:#x} {} {} {:#x}", ins.code, ins.jt, ins.jf, ins.k);
                    }
                    eprintln!("len {}", program.len());
                }
                panic!("round {round}: {e}");
            }
            let nrs: Vec<u32> = filter.rules.keys().copied().collect();
            for _ in 0..400 {
                let nr = match g.below(10) {
                    0 => g.below(1 << 32) as u32,
                    1 => 0x4000_0000 | g.below(500) as u32,
                    2..=4 => g.below(470) as u32,
                    _ => g.pick(&nrs).wrapping_add(g.pick(&[0, 0, 0, 1, u32::MAX])),
                };
                let args =
                    [(); 6].map(|_| g.pick(&VALUES) ^ if g.below(4) == 0 { g.next() } else { 0 });
                let audit = match g.below(12) {
                    0 => AUDIT_ARCH_I386,
                    _ => arch.audit_arch(),
                };
                let data = SeccompData {
                    nr,
                    arch: audit,
                    instruction_pointer: 0,
                    args,
                };
                let expected = filter.decide(audit, nr, &args).ret_value();
                assert_eq!(
                    run(&program, &data),
                    Ok(expected),
                    "round {round}: nr {nr} args {args:x?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 50_000);
    }

    #[test]
    fn empty_filter_is_an_error_never_no_filter() {
        let f = Filter::new(Arch::X86_64, Action::Allow);
        assert!(matches!(compile(&f), Err(CompileError::Empty)));
        // Rules that only repeat the default action confine nothing either.
        let mut f = Filter::new(Arch::X86_64, Action::Errno(1));
        f.push_rule(
            0,
            Rule {
                conditions: vec![],
                action: Action::Errno(1),
            },
        );
        assert!(matches!(compile(&f), Err(CompileError::Empty)));
    }

    #[test]
    fn binary_search_layout_is_compact_and_long_jumps_work() {
        // Every other syscall allowed: 470 intervals, left subtrees far beyond 255 instructions.
        let mut f = Filter::new(Arch::X86_64, Action::Errno(38));
        for nr in (0..470).step_by(2) {
            f.push_rule(
                nr,
                Rule {
                    conditions: vec![],
                    action: Action::Allow,
                },
            );
        }
        let p = compile(&f).unwrap();
        assert!(p.len() < 1100, "{} instructions", p.len());
        for nr in 0..480u32 {
            let want = if nr % 2 == 0 && nr < 470 {
                Action::Allow
            } else {
                Action::Errno(38)
            };
            let d = SeccompData::new(Arch::X86_64, nr, [0; 6]);
            assert_eq!(run(&p, &d), Ok(want.ret_value()), "nr {nr}");
        }
        // A contiguous range costs a couple of instructions, not one per syscall.
        let mut f = Filter::new(Arch::X86_64, Action::Errno(38));
        for nr in 0..300 {
            f.push_rule(
                nr,
                Rule {
                    conditions: vec![],
                    action: Action::Allow,
                },
            );
        }
        assert!(compile(&f).unwrap().len() < 12);
    }

    #[test]
    fn foreign_abis_are_killed() {
        let mut f = Filter::new(Arch::X86_64, Action::Allow);
        f.push_rule(
            165,
            Rule {
                conditions: vec![],
                action: Action::Errno(1),
            },
        );
        let p = compile(&f).unwrap();
        let kill = libc::SECCOMP_RET_KILL_PROCESS;
        // i386 mount (21) through int 0x80, and x32 mount (0x40000000 | 165).
        let i386 = SeccompData {
            nr: 21,
            arch: AUDIT_ARCH_I386,
            instruction_pointer: 0,
            args: [0; 6],
        };
        assert_eq!(run(&p, &i386), Ok(kill));
        let x32 = SeccompData::new(Arch::X86_64, 0x4000_0000 | 165, [0; 6]);
        assert_eq!(run(&p, &x32), Ok(kill));
        assert_eq!(
            run(&p, &SeccompData::new(Arch::X86_64, 165, [0; 6])),
            Ok(libc::SECCOMP_RET_ERRNO | 1)
        );
        assert_eq!(
            run(&p, &SeccompData::new(Arch::X86_64, 0, [0; 6])),
            Ok(libc::SECCOMP_RET_ALLOW)
        );
    }

    #[test]
    fn too_large_and_bad_values_are_refused() {
        let mut f = Filter::new(Arch::X86_64, Action::Allow);
        let cond = |v| ArgCondition {
            index: 0,
            op: CmpOp::Eq,
            value: v,
            width: Width::Bits64,
        };
        for v in 0..1000 {
            f.push_rule(
                1,
                Rule {
                    conditions: vec![cond(v)],
                    action: Action::Errno(1),
                },
            );
        }
        assert!(matches!(compile(&f), Err(CompileError::TooLarge { .. })));

        let mut f = Filter::new(Arch::X86_64, Action::Allow);
        f.push_rule(
            1,
            Rule {
                conditions: vec![],
                action: Action::Errno(5000),
            },
        );
        assert!(matches!(
            compile(&f),
            Err(CompileError::ErrnoRange { value: 5000 })
        ));

        let mut f = Filter::new(Arch::X86_64, Action::Allow);
        let wide = ArgCondition {
            index: 0,
            op: CmpOp::Eq,
            value: 1 << 40,
            width: Width::Bits32,
        };
        f.push_rule(
            1,
            Rule {
                conditions: vec![wide],
                action: Action::Errno(1),
            },
        );
        assert!(matches!(
            compile(&f),
            Err(CompileError::ValueTooWide { .. })
        ));

        let mut f = Filter::new(Arch::X86_64, Action::Allow);
        let idx = ArgCondition {
            index: 6,
            op: CmpOp::Eq,
            value: 1,
            width: Width::Bits64,
        };
        f.push_rule(
            1,
            Rule {
                conditions: vec![idx],
                action: Action::Errno(1),
            },
        );
        assert!(matches!(
            compile(&f),
            Err(CompileError::ArgIndex { index: 6, .. })
        ));
    }

    #[test]
    fn check_program_refuses_malformed_programs() {
        assert!(matches!(check_program(&[]), Err(CompileError::Empty)));
        let ja_out = [stmt(BPF_JA, 5), ret(Action::Allow)];
        assert!(matches!(
            check_program(&ja_out),
            Err(CompileError::Malformed { pc: 0, .. })
        ));
        let no_ret = [stmt(BPF_LD_W_ABS, 0)];
        assert!(matches!(
            check_program(&no_ret),
            Err(CompileError::Malformed { .. })
        ));
    }
}
