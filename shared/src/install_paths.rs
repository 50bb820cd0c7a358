//! Where `make setup` put a file: an environment variable overrides the path that the build
//! baked in (each crate's build.rs), and an empty value counts as unset.

use std::path::PathBuf;

/// `$env_var` if set and non-empty, else `baked` (an `option_env!` value) if non-empty.
pub fn configured_path(env_var: &str, baked: Option<&'static str>) -> Option<PathBuf> {
    std::env::var_os(env_var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| baked.filter(|s| !s.is_empty()).map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_baked_path_and_empty_means_unset() {
        // A variable name no other test or tool sets.
        let var = "PAGAN_INSTALL_PATHS_TEST_ONLY";
        // SAFETY: only this test reads or writes this variable.
        unsafe { std::env::remove_var(var) };
        assert_eq!(
            configured_path(var, Some("/baked")),
            Some(PathBuf::from("/baked"))
        );
        assert_eq!(configured_path(var, Some("")), None);
        assert_eq!(configured_path(var, None), None);
        unsafe { std::env::set_var(var, "/from/env") };
        assert_eq!(
            configured_path(var, Some("/baked")),
            Some(PathBuf::from("/from/env"))
        );
        unsafe { std::env::set_var(var, "") };
        assert_eq!(
            configured_path(var, Some("/baked")),
            Some(PathBuf::from("/baked"))
        );
        unsafe { std::env::remove_var(var) };
    }
}
