//! The seccomp rules that send a system container's privileged calls to
//! warren-interceptor, merged into whatever profile the spec already has.
//!
//! The rules are built from one table, [`interceptor_ebpf::policy::RULES`]
//! (what is trapped, refused and allowed, and why; the README's table is
//! tested against it). Trap narrowly, in the filter itself, but default to
//! trapping: mount(2) traps unless its flags are exactly one propagation
//! change, whatever other bits they carry (MS_MGC_VAL included), and the
//! whole fd-based mount API fails with ENOSYS. The spec's own rules for these
//! calls are replaced.
//!
//! Names libseccomp does not know (it skips them, and so does libcontainer)
//! are refused by number by a second, fixed filter: [`refuse_by_number`].

use interceptor_ebpf::policy::{
    Action, MS_REC, MS_SILENT, PROPAGATION, RULES, SECCOMP_FILTER_FLAG_NEW_LISTENER, When,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};
use serde_json::json;

pub const MS_REMOUNT: u64 = 0x20;
pub const MS_BIND: u64 = 0x1000;
pub const MS_MOVE: u64 = 0x2000;
const S_IFMT: u64 = 0o170000;
const S_IFCHR: u64 = 0o020000;

fn masked_eq(index: u32, mask: u64, value: u64) -> serde_json::Value {
    json!({"index": index, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"})
}

fn eq(index: u32, value: u64) -> serde_json::Value {
    json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"})
}

fn rule(
    names: &[&str],
    action: &str,
    args: Vec<serde_json::Value>,
    errno: Option<i32>,
) -> LinuxSyscall {
    let mut r = json!({"names": names, "action": action});
    if !args.is_empty() {
        r["args"] = args.into();
    }
    if let Some(e) = errno {
        r["errnoRet"] = e.into();
    }
    serde_json::from_value(r).expect("a rule built from constants always parses")
}

fn allows(profile: &LinuxSeccomp, name: &str) -> bool {
    if profile.default_action() == LinuxSeccompAction::ScmpActAllow {
        return true;
    }
    profile.syscalls().as_ref().is_some_and(|rules| {
        rules.iter().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow
                && r.names().iter().any(|n| n == name)
                && r.args().as_ref().is_none_or(|a| a.is_empty())
        })
    })
}

/// The argument conditions under which a row applies: one rule per entry
/// (rules are ORed; a rule's conditions are ANDed).
fn conditions(when: When) -> Vec<Vec<serde_json::Value>> {
    match when {
        When::Always => vec![vec![]],
        When::CharDevice { arg } => vec![vec![masked_eq(arg, S_IFMT, S_IFCHR)]],
        When::NewListener => vec![vec![masked_eq(
            1,
            SECCOMP_FILTER_FLAG_NEW_LISTENER,
            SECCOMP_FILTER_FLAG_NEW_LISTENER,
        )]],
        When::NotPropagationOnly => {
            // seccomp compares, it cannot test "not one of": trap on any bit
            // outside the propagation flags (MS_REC and MS_SILENT aside), on
            // no propagation flag, and on two of them.
            let all: u64 = PROPAGATION.iter().fold(0, |a, b| a | b);
            let free = all | MS_REC | MS_SILENT;
            let mut out: Vec<Vec<serde_json::Value>> = (0..64)
                .map(|bit| 1u64 << bit)
                .filter(|b| free & b == 0)
                .map(|b| vec![masked_eq(3, b, b)])
                .collect();
            out.push(vec![masked_eq(3, all, 0)]);
            for (i, a) in PROPAGATION.iter().enumerate() {
                for b in &PROPAGATION[i + 1..] {
                    out.push(vec![masked_eq(3, a | b, a | b)]);
                }
            }
            out
        }
    }
}

/// The exact mount(2) flags a deny-by-default profile must still allow:
/// the propagation changes the trap rules let through.
fn propagation_values() -> Vec<u64> {
    let extras = [0, MS_REC, MS_SILENT, MS_REC | MS_SILENT];
    PROPAGATION
        .iter()
        .flat_map(|p| extras.iter().map(move |e| p | e))
        .collect()
}

/// Returns the profile with warren's rules, talking to `listener`.
pub fn with_interception(
    profile: Option<LinuxSeccomp>,
    listener: &std::path::Path,
    metadata: &str,
) -> LinuxSeccomp {
    let mut profile = profile.unwrap_or_else(|| {
        serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ALLOW"}))
            .expect("a default profile always parses")
    });
    let allow_default = profile.default_action() == LinuxSeccompAction::ScmpActAllow;
    let seccomp_allowed = allows(&profile, "seccomp");

    let mut rules: Vec<LinuxSyscall> = profile.syscalls().clone().unwrap_or_default();
    for r in rules.iter_mut() {
        let names: Vec<String> = r
            .names()
            .iter()
            .filter(|n| !RULES.iter().any(|o| o.name == n.as_str()))
            .cloned()
            .collect();
        r.set_names(names);
    }
    rules.retain(|r| !r.names().is_empty());

    for row in RULES {
        let (action, errno) = match row.action {
            Action::Notify => ("SCMP_ACT_NOTIFY", None),
            Action::Enosys => ("SCMP_ACT_ERRNO", Some(libc::ENOSYS)),
            Action::Einval => ("SCMP_ACT_ERRNO", Some(libc::EINVAL)),
        };
        for args in conditions(row.when) {
            rules.push(rule(&[row.name], action, args, errno));
        }
        if allow_default {
            continue;
        }
        // Under a deny-by-default profile, what the rows let through must be
        // allowed explicitly, or the profile's default would refuse it.
        match row.when {
            When::NotPropagationOnly => {
                for v in propagation_values() {
                    rules.push(rule(&[row.name], "SCMP_ACT_ALLOW", vec![eq(3, v)], None));
                }
            }
            When::NewListener if seccomp_allowed => {
                rules.push(rule(
                    &[row.name],
                    "SCMP_ACT_ALLOW",
                    vec![masked_eq(1, SECCOMP_FILTER_FLAG_NEW_LISTENER, 0)],
                    None,
                ));
            }
            _ => {}
        }
    }
    profile.set_syscalls(Some(rules));
    profile.set_listener_path(Some(listener.to_path_buf()));
    profile.set_listener_metadata(Some(metadata.to_owned()));
    profile
}

/// Whether `profile` carries warren's rules (see [`with_interception`]).
pub fn is_warrens(profile: &LinuxSeccomp) -> bool {
    profile.listener_metadata().as_deref() == Some(super::LISTENER_METADATA)
}

/// The numbers of the table's ENOSYS rows whose names this machine's
/// libseccomp cannot resolve (libcontainer skips those rules).
fn unnamed_enosys() -> Vec<u32> {
    RULES
        .iter()
        .filter(|r| r.action == Action::Enosys)
        .filter(|r| libseccomp::ScmpSyscall::from_name(r.name).is_err())
        .filter_map(|r| r.nr)
        .map(|n| n as u32)
        .collect()
}

/// Installs, in the calling process and everything it starts, a filter
/// that refuses by number, on x86_64 (x32 too) and i386, the table's ENOSYS
/// rows that libseccomp cannot name (`open_tree_attr` with libseccomp
/// 2.5), so that the spec's rules skip none of the table. Only unnamed
/// calls: libcontainer itself, which this process runs next, uses the
/// named ones (fsopen for proc) and knows no unnamed one. Needs
/// CAP_SYS_ADMIN or no_new_privs, like any filter.
pub fn refuse_by_number() -> std::io::Result<()> {
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const X32_BIT: u32 = 0x4000_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let numbers = unnamed_enosys();
    if numbers.is_empty() {
        return Ok(());
    }
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let n = numbers.len() as u8;
    let mut prog = vec![
        // arch: seccomp_data.arch is at offset 4, nr at 0.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
        jeq(AUDIT_ARCH_X86_64, 1, 0),
        jeq(AUDIT_ARCH_I386, 0, n + 2),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        stmt(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, !X32_BIT),
    ];
    for (i, nr) in numbers.iter().enumerate() {
        // On a match, jump past the remaining compares and the ALLOW.
        prog.push(jeq(*nr, n - i as u8, 0));
    }
    prog.push(stmt(libc::BPF_RET | libc::BPF_K, SECCOMP_RET_ALLOW));
    prog.push(stmt(
        libc::BPF_RET | libc::BPF_K,
        SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    ));
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: fprog points at prog, which outlives the call; the kernel
    // copies the program before returning.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn actions_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        p.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    /// Evaluates the profile's rules for one syscall the way the kernel
    /// would see them (rules ORed, conditions ANDed), for MASKED_EQ and EQ.
    fn verdict(p: &LinuxSeccomp, name: &str, args: [u64; 6]) -> LinuxSeccompAction {
        use oci_spec::runtime::LinuxSeccompOperator as Op;
        for r in actions_for(p, name) {
            let hit = r.args().as_ref().is_none_or(|conds| {
                conds.iter().all(|c| {
                    let a = args[c.index()];
                    match c.op() {
                        Op::ScmpCmpMaskedEq => a & c.value() == c.value_two().unwrap_or(0),
                        Op::ScmpCmpEq => a == c.value(),
                        other => panic!("unexpected operator {other:?}"),
                    }
                })
            });
            if hit {
                return r.action();
            }
        }
        p.default_action()
    }

    fn mount_flags(flags: u64) -> [u64; 6] {
        [0, 0, 0, flags, 0, 0]
    }

    #[test]
    fn mount_traps_everything_but_a_pure_propagation_change() {
        use interceptor_ebpf::policy::{MS_PRIVATE, MS_SHARED, MS_SLAVE};
        for profile in [
            None,
            Some(serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ERRNO"})).unwrap()),
        ] {
            let p = with_interception(profile, Path::new("/s"), "m");
            let notify = LinuxSeccompAction::ScmpActNotify;
            for flags in [
                0,
                MS_BIND,
                MS_BIND | MS_REC,
                MS_REMOUNT,
                MS_MOVE,
                0xC0ED_0000,
                0xC0ED_0000 | MS_PRIVATE,
                MS_PRIVATE | MS_SHARED,
                MS_SLAVE | (1 << 40),
                1, // MS_RDONLY: a new superblock
            ] {
                assert_eq!(
                    verdict(&p, "mount", mount_flags(flags)),
                    notify,
                    "{flags:#x}"
                );
            }
            for flags in [
                MS_PRIVATE,
                MS_SLAVE | MS_REC,
                MS_SHARED | MS_REC | MS_SILENT,
            ] {
                assert_eq!(
                    verdict(&p, "mount", mount_flags(flags)),
                    LinuxSeccompAction::ScmpActAllow,
                    "{flags:#x}"
                );
            }
        }
    }

    /// The README's table line for a row of the policy table.
    fn readme_line(row: &interceptor_ebpf::policy::Rule) -> String {
        format!(
            "| `{}` | {} | {} | {} |",
            row.name,
            row.when.describe(),
            row.action.word(),
            row.why
        )
    }

    #[test]
    fn the_readme_table_is_the_policy_table() {
        let readme = include_str!("../../../README.md");
        let table: Vec<&str> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| call | when | filter | why |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let want: Vec<String> = RULES.iter().map(readme_line).collect();
        assert_eq!(
            table,
            want,
            "the README's interceptor table must read:\n{}",
            want.join("\n")
        );
    }

    #[test]
    fn every_row_of_the_table_has_its_rule() {
        let p = with_interception(None, Path::new("/run/warren/i.sock"), "warren/v1");
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(
            p.listener_path().as_deref(),
            Some(Path::new("/run/warren/i.sock"))
        );
        for row in RULES {
            let rules = actions_for(&p, row.name);
            assert!(!rules.is_empty(), "{}", row.name);
            let want = match row.action {
                Action::Notify => LinuxSeccompAction::ScmpActNotify,
                Action::Enosys | Action::Einval => LinuxSeccompAction::ScmpActErrno,
            };
            assert!(rules.iter().all(|r| r.action() == want), "{}", row.name);
        }
        assert_eq!(
            actions_for(&p, "fsopen")[0].errno_ret(),
            Some(libc::ENOSYS as u32)
        );
        assert_eq!(
            actions_for(&p, "open_tree_attr")[0].errno_ret(),
            Some(libc::ENOSYS as u32)
        );
        assert_eq!(
            actions_for(&p, "seccomp")[0].errno_ret(),
            Some(libc::EINVAL as u32)
        );
    }

    #[test]
    fn a_deny_by_default_profile_keeps_its_rules_and_loses_its_mount_rules() {
        let docker_like: LinuxSeccomp = serde_json::from_value(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write", "mount", "seccomp"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["umount2"], "action": "SCMP_ACT_ALLOW"}
            ]
        }))
        .unwrap();
        let p = with_interception(Some(docker_like), Path::new("/s"), "m");
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        let read = actions_for(&p, "read");
        assert_eq!(read[0].action(), LinuxSeccompAction::ScmpActAllow);
        assert!(
            actions_for(&p, "mount").iter().all(|r| r.args().is_some()),
            "the spec's unconditional allow of mount is gone"
        );
        let sc = actions_for(&p, "seccomp");
        assert_eq!(sc.len(), 2, "EINVAL for NEW_LISTENER, allowed otherwise");
        assert_eq!(
            verdict(&p, "seccomp", [1, 0, 0, 0, 0, 0]),
            LinuxSeccompAction::ScmpActAllow
        );
        assert_eq!(
            verdict(
                &p,
                "seccomp",
                [1, SECCOMP_FILTER_FLAG_NEW_LISTENER, 0, 0, 0, 0]
            ),
            LinuxSeccompAction::ScmpActErrno
        );
        assert_eq!(actions_for(&p, "umount2").len(), 1);
    }
}
