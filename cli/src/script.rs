//! `warren run FILE [ARGS…]`: a script picks its curated image and the command that runs
//! it (compiling first where the language needs it). When the image is not built, the
//! script runs on the host view instead — said on stderr — as long as the host has the
//! interpreter or compiler.

use std::path::{Path, PathBuf};

/// How one language runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Language {
    /// File extensions (without the dot).
    pub extensions: &'static [&'static str],
    /// The curated image (recipe name; stored as `warren/<image>`).
    pub image: &'static str,
    /// The program that must exist (in the image or on the host).
    pub tool: &'static str,
    /// `sh -c` script: `$0` is the script, `"$@"` its arguments.
    pub run: &'static str,
}

/// Every language `warren run FILE` knows.
pub const LANGUAGES: &[Language] = &[
    Language {
        extensions: &["py"],
        image: "python",
        tool: "python3",
        run: r#"exec python3 "$0" "$@""#,
    },
    Language {
        extensions: &["R", "r"],
        image: "r",
        tool: "Rscript",
        run: r#"exec Rscript "$0" "$@""#,
    },
    Language {
        extensions: &["jl"],
        image: "julia",
        tool: "julia",
        run: r#"exec julia "$0" "$@""#,
    },
    Language {
        extensions: &["go"],
        image: "go",
        tool: "go",
        run: r#"GOCACHE=/tmp/go-cache GOPATH=/tmp/go exec go run "$0" "$@""#,
    },
    Language {
        extensions: &["rs"],
        image: "rust",
        tool: "rustc",
        run: r#"rustc -O -o /tmp/warren-script "$0" && exec /tmp/warren-script "$@""#,
    },
    Language {
        extensions: &["cpp", "cc", "cxx"],
        image: "cpp",
        tool: "g++",
        run: r#"g++ -O2 -o /tmp/warren-script "$0" && exec /tmp/warren-script "$@""#,
    },
    Language {
        extensions: &["sh"],
        image: "base",
        tool: "sh",
        run: r#"exec sh "$0" "$@""#,
    },
];

/// The language of `path` by its extension.
pub fn language_of(path: &Path) -> Option<&'static Language> {
    let ext = path.extension()?.to_str()?;
    LANGUAGES.iter().find(|l| l.extensions.contains(&ext))
}

/// Whether `warren run` should treat `command` as a script: its first word is an existing
/// file with a known extension.
pub fn detect(command: &[String], cwd: &Path) -> Option<(PathBuf, &'static Language)> {
    let first = command.first()?;
    let lang = language_of(Path::new(first))?;
    let p = cwd.join(first);
    p.is_file()
        .then(|| (std::fs::canonicalize(&p).unwrap_or(p), lang))
}

/// The command that runs `script` (its path inside the sandbox) with `args`.
pub fn command(lang: &Language, script: &Path, args: &[String]) -> Vec<String> {
    let mut c = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        lang.run.to_owned(),
        script.display().to_string(),
    ];
    c.extend(args.iter().cloned());
    c
}

/// Finds `tool` in the host's system directories (what the host view shows).
pub fn host_has(tool: &str, host_root: &Path) -> bool {
    ["usr/local/bin", "usr/bin", "bin", "usr/sbin", "sbin"]
        .iter()
        .any(|d| host_root.join(d).join(tool).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_map_to_images_and_commands() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(d.path().join("x.rs"), "fn main(){}").expect("w");
        let (p, l) = detect(&["x.rs".into(), "a".into()], d.path()).expect("script");
        assert_eq!(l.image, "rust");
        let c = command(l, &p, &["a".into()]);
        assert!(c[2].contains("rustc"), "{c:?}");
        assert_eq!(c.last().map(String::as_str), Some("a"));
        assert_eq!(language_of(Path::new("m.cc")).map(|l| l.image), Some("cpp"));
        assert_eq!(
            language_of(Path::new("a.R")).map(|l| l.tool),
            Some("Rscript")
        );
        assert!(detect(&["python3".into()], d.path()).is_none());
        assert!(detect(&["missing.py".into()], d.path()).is_none());
        assert!(host_has("sh", Path::new("/")));
    }
}
