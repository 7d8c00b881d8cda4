//! Finding a file that lives beside the checkout (`.cache/…`), wherever
//! `nodal` was started from.

use std::path::{Path, PathBuf};

/// `relative` under the working directory, the executable's folder, or one
/// of their ancestors, nearest first. `Err` lists every path tried.
pub fn find_in_ancestors(relative: &Path) -> Result<PathBuf, Vec<PathBuf>> {
    let starts = [
        std::env::current_dir().ok(),
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf)),
    ];
    let mut tried = Vec::new();
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            let candidate = dir.join(relative);
            if candidate.is_file() {
                return Ok(candidate);
            }
            tried.push(candidate);
        }
    }
    Err(tried)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_file_above_the_working_directory_and_lists_what_it_tried() {
        let here = std::env::current_dir().expect("cwd");
        let found = find_in_ancestors(Path::new("Cargo.toml")).expect("found");
        assert_eq!(found, here.join("Cargo.toml"));
        let tried = find_in_ancestors(Path::new("no/such/file.bin")).unwrap_err();
        assert!(tried.contains(&here.join("no/such/file.bin")), "{tried:?}");
    }
}
