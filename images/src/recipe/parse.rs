//! Loading and validating recipe files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Base, Recipe, RecipeError, RecipeFile, Step, StepKind};
use crate::error::IoContext;

/// Recipes by name, loaded from one directory.
#[derive(Debug, Clone, Default)]
pub struct RecipeSet {
    dir: PathBuf,
    recipes: BTreeMap<String, Recipe>,
}

impl RecipeSet {
    /// The recipe called `name`.
    pub fn get(&self, name: &str) -> Result<&Recipe, RecipeError> {
        self.recipes.get(name).ok_or_else(|| RecipeError::NotFound {
            name: name.to_string(),
            dir: self.dir.clone(),
        })
    }

    /// All recipes, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Recipe> {
        self.recipes.values()
    }

    /// Adds (or replaces) a recipe.
    pub fn insert(&mut self, r: Recipe) {
        self.recipes.insert(r.name.clone(), r);
    }

    /// `name` and its ancestors, root first.
    pub fn chain(&self, name: &str) -> Result<Vec<&Recipe>, RecipeError> {
        let mut out = vec![self.get(name)?];
        while let Base::Recipe(p) = &out[out.len() - 1].base {
            if out.iter().any(|r| &r.name == p) || out.len() > 32 {
                let names: Vec<_> = out.iter().map(|r| r.name.as_str()).collect();
                return Err(RecipeError::Cycle(format!("{} -> {p}", names.join(" -> "))));
            }
            out.push(self.get(p)?);
        }
        out.reverse();
        Ok(out)
    }
}

/// Loads every `*.toml` in `dir`.
pub fn load_dir(dir: &Path) -> Result<RecipeSet, RecipeError> {
    let mut set = RecipeSet {
        dir: dir.to_path_buf(),
        recipes: BTreeMap::new(),
    };
    let mut paths = Vec::new();
    for e in std::fs::read_dir(dir).at("read directory", dir)? {
        let p = e.at("read directory", dir)?.path();
        if p.extension().is_some_and(|x| x == "toml") {
            paths.push(p);
        }
    }
    paths.sort();
    for p in paths {
        set.insert(load_file(&p)?);
    }
    for r in set.recipes.values() {
        set.chain(&r.name)?;
    }
    Ok(set)
}

/// Loads and validates one recipe file.
pub fn load_file(path: &Path) -> Result<Recipe, RecipeError> {
    let text = std::fs::read_to_string(path).at("read", path)?;
    let r = parse_str(&text, path)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if r.name != stem {
        return Err(RecipeError::Invalid {
            path: path.to_path_buf(),
            message: format!("name {:?} does not match the file name {stem:?}", r.name),
        });
    }
    Ok(r)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parses recipe TOML; `path` is only used in errors.
pub fn parse_str(text: &str, path: &Path) -> Result<Recipe, RecipeError> {
    let f: RecipeFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        RecipeError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().to_string(),
        }
    })?;
    let invalid = |m: String| RecipeError::Invalid {
        path: path.to_path_buf(),
        message: m,
    };
    if f.name.is_empty()
        || !f
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(invalid(format!("bad recipe name {:?}", f.name)));
    }
    let base = match (&f.from, &f.base) {
        (Some(p), None) => Base::Recipe(p.clone()),
        (None, Some(b)) => match (&b.debootstrap, &b.image) {
            (Some(d), None) => {
                for p in &d.include {
                    check_apt_name(p).map_err(invalid)?;
                }
                Base::Debootstrap(d.clone())
            }
            (None, Some(i)) => Base::Image(i.clone()),
            _ => {
                return Err(invalid(
                    "[base] needs exactly one of debootstrap, image".into(),
                ));
            }
        },
        _ => {
            return Err(invalid(
                "needs exactly one of `from = \"recipe\"` or a [base] table".into(),
            ));
        }
    };
    let mut steps = Vec::new();
    for (i, s) in f.steps.iter().enumerate() {
        let n = i + 1;
        let set = [
            s.apt.is_some(),
            s.pip.is_some(),
            s.run.is_some(),
            s.download.is_some(),
        ];
        if set.iter().filter(|x| **x).count() != 1 {
            return Err(invalid(format!(
                "step {n} needs exactly one of apt, pip, run, download"
            )));
        }
        if s.pip_index_url.is_some() && s.pip.is_none() {
            return Err(invalid(format!("step {n}: pip_index_url without pip")));
        }
        let kind = if let Some(a) = &s.apt {
            if a.is_empty() {
                return Err(invalid(format!("step {n}: empty apt list")));
            }
            for p in a {
                check_apt_name(p).map_err(|m| invalid(format!("step {n}: {m}")))?;
            }
            StepKind::Apt(a.clone())
        } else if let Some(p) = &s.pip {
            if p.is_empty() {
                return Err(invalid(format!("step {n}: empty pip list")));
            }
            StepKind::Pip {
                packages: p.clone(),
                index_url: s.pip_index_url.clone(),
            }
        } else if let Some(r) = &s.run {
            StepKind::Run(r.clone())
        } else if let Some(d) = &s.download {
            if crate::Digest::parse(&format!("sha256:{}", d.sha256)).is_err() {
                return Err(invalid(format!(
                    "step {n}: sha256 must be 64 lowercase hex digits"
                )));
            }
            if !d.dest.starts_with('/') || d.dest.split('/').any(|c| c == "..") || d.dest == "/" {
                return Err(invalid(format!(
                    "step {n}: dest must be an absolute path without '..'"
                )));
            }
            if !(d.url.starts_with("http://")
                || d.url.starts_with("https://")
                || d.url.starts_with("file://"))
            {
                return Err(invalid(format!(
                    "step {n}: url must be http(s):// or file://"
                )));
            }
            StepKind::Download(d.clone())
        } else {
            return Err(invalid(format!("step {n} is empty")));
        };
        let label = s.name.clone().unwrap_or_else(|| default_label(&kind));
        steps.push(Step {
            label,
            kind,
            env: s.env.clone(),
        });
    }
    Ok(Recipe {
        name: f.name,
        description: f.description,
        path: path.to_path_buf(),
        base,
        steps,
        config: f.config,
        smoke: f.smoke.map(|s| s.run),
    })
}

fn check_apt_name(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && p.as_bytes()[0].is_ascii_alphanumeric()
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.:=~_".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("bad Debian package name {p:?}"))
    }
}

fn default_label(k: &StepKind) -> String {
    let short = |v: &[String]| {
        let mut s = v.iter().take(4).cloned().collect::<Vec<_>>().join(" ");
        if v.len() > 4 {
            s.push_str(&format!(" (+{})", v.len() - 4));
        }
        s
    };
    match k {
        StepKind::Apt(p) => format!("apt-get install {}", short(p)),
        StepKind::Pip { packages, .. } => format!("pip install {}", short(packages)),
        StepKind::Run(s) => format!(
            "run {}",
            s.lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect::<String>()
        ),
        StepKind::Download(d) => format!("download {}", d.url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_file_and_line() {
        let text = "name = \"x\"\ndescription = \"d\"\nfrom = \"base\"\n\n[[steps]]\napt = [\"curl\"]\nsurprise = 1\n";
        let e = parse_str(text, Path::new("recipes/x.toml")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("recipes/x.toml:7:"), "{s}");
        assert!(s.contains("surprise"), "{s}");
    }

    #[test]
    fn step_needs_exactly_one_action() {
        let text = "name = \"x\"\ndescription = \"d\"\nfrom = \"base\"\n[[steps]]\napt = [\"a\"]\nrun = \"true\"\n";
        assert!(
            parse_str(text, Path::new("x.toml"))
                .unwrap_err()
                .to_string()
                .contains("step 1")
        );
    }

    #[test]
    fn bad_package_names_and_dests() {
        let t =
            "name = \"x\"\ndescription = \"d\"\nfrom = \"b\"\n[[steps]]\napt = [\"a; rm -rf /\"]\n";
        assert!(parse_str(t, Path::new("x.toml")).is_err());
        let t = "name = \"x\"\ndescription = \"d\"\nfrom = \"b\"\n[[steps.download]]\n";
        assert!(parse_str(t, Path::new("x.toml")).is_err());
        let t = "name = \"x\"\ndescription = \"d\"\nfrom = \"b\"\n[[steps]]\n[steps.download]\nurl = \"file:///x\"\nsha256 = \"00\"\ndest = \"/x\"\n";
        assert!(
            parse_str(t, Path::new("x.toml"))
                .unwrap_err()
                .to_string()
                .contains("sha256")
        );
    }

    #[test]
    fn cycles_are_reported() {
        let mut set = RecipeSet::default();
        for (n, p) in [("a", "b"), ("b", "a")] {
            let t = format!("name = \"{n}\"\ndescription = \"d\"\nfrom = \"{p}\"\n");
            set.insert(parse_str(&t, Path::new("x.toml")).unwrap());
        }
        assert!(matches!(set.chain("a"), Err(RecipeError::Cycle(_))));
    }
}
