//! `leakwatch generate completions|man` and the output convention every `generate` kind shares:
//! stdout, or `-o PATH` (a file, or a directory that gets the file under its usual name),
//! creating missing directories.

use std::path::{Path, PathBuf};

use super::{Cli, Output};

/// A shell completion script for the whole command tree.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command_tree(), "leakwatch", &mut out);
    out
}

/// The completion script's usual file name for `shell`.
pub fn completions_file_name(shell: clap_complete::Shell) -> String {
    match shell {
        clap_complete::Shell::Bash => "leakwatch.bash".into(),
        clap_complete::Shell::Zsh => "_leakwatch".into(),
        clap_complete::Shell::Fish => "leakwatch.fish".into(),
        clap_complete::Shell::PowerShell => "_leakwatch.ps1".into(),
        clap_complete::Shell::Elvish => "leakwatch.elv".into(),
        _ => format!("leakwatch.{shell}"),
    }
}

/// The man page (section 1, roff): the top command, then a section per subcommand.
pub fn man() -> std::io::Result<Vec<u8>> {
    let tree = Cli::command_tree();
    let mut out = Vec::new();
    let top = clap_mangen::Man::new(tree.clone());
    top.render_title(&mut out)?;
    top.render_name_section(&mut out)?;
    top.render_synopsis_section(&mut out)?;
    top.render_description_section(&mut out)?;
    top.render_options_section(&mut out)?;
    top.render_subcommands_section(&mut out)?;
    for sub in tree.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("leakwatch {}", sub.get_name());
        let sub = sub.clone().bin_name(name);
        let page = clap_mangen::Man::new(sub);
        page.render_synopsis_section(&mut out)?;
        page.render_description_section(&mut out)?;
        page.render_options_section(&mut out)?;
        page.render_subcommands_section(&mut out)?;
    }
    top.render_version_section(&mut out)?;
    Ok(out)
}

/// Where `-o` sends a file usually named `name`: `None` for stdout.
pub fn output_path(out: &Output, name: &str) -> Option<PathBuf> {
    let path = out.output.as_deref()?;
    let is_dir = path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/');
    Some(if is_dir { path.join(name) } else { path.to_path_buf() })
}

/// Writes `bytes` to `path` (creating its directory) or to stdout.
pub fn write(path: Option<&Path>, bytes: &[u8]) -> Result<(), String> {
    let Some(path) = path else {
        return std::io::Write::write_all(&mut std::io::stdout(), bytes).map_err(|e| format!("stdout: {e}"));
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBCOMMANDS: [&str; 5] = ["serve", "run", "logs", "status", "generate"];

    #[test]
    fn completions_render_for_every_shell_and_name_each_subcommand() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let text = String::from_utf8(completions(shell)).unwrap();
            for sub in SUBCOMMANDS.iter().chain(&["server", "listen"]) {
                assert!(text.contains(sub), "{shell}: {sub} missing");
            }
        }
    }

    #[test]
    fn the_man_page_renders_and_names_each_subcommand_and_its_flags() {
        let text = String::from_utf8(man().unwrap()).unwrap();
        assert!(text.contains(".TH leakwatch"), "{text}");
        for sub in SUBCOMMANDS {
            assert!(text.contains(&format!("leakwatch {sub}")), "{sub} missing");
        }
        for flag in ["listen", "server", "follow", "verbose"] {
            assert!(text.contains(&format!("\\-\\-{flag}")), "--{flag} missing");
        }
    }

    #[test]
    fn output_goes_to_a_file_or_into_a_directory_created_on_the_way() {
        let dir = std::env::temp_dir().join(format!("leakwatch-generate-{}", std::process::id()));
        let file = |o: &str| Output { output: Some(PathBuf::from(o)) };
        let target = dir.join("a/b/");
        let path = output_path(&file(target.to_str().unwrap()), "leakwatch.1").unwrap();
        assert_eq!(path, dir.join("a/b/leakwatch.1"));
        write(Some(&path), b"x").unwrap();
        assert_eq!(
            output_path(&file(dir.join("a/b").to_str().unwrap()), "n"),
            Some(dir.join("a/b/n")),
            "an existing dir"
        );
        assert_eq!(output_path(&file("r.yaml"), "n"), Some(PathBuf::from("r.yaml")));
        assert_eq!(output_path(&Output { output: None }, "n"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
