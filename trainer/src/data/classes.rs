//! The classes of labelled datasets: names in label order, and a `folder:` dataset's labels
//! from its class subfolders.

use std::path::{Path, PathBuf};

use super::DatasetSpec;

/// Fashion-MNIST's classes in label order.
const FASHION_MNIST: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
/// CIFAR-10's classes in label order.
const CIFAR10: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

impl DatasetSpec {
    /// Class names in label order, for datasets with labels: the built-in labelled sets,
    /// and a `folder:` whose images sit in one subfolder per class (of `train/` when the
    /// folder is split, else of the folder itself). `None` otherwise (CelebA, flat folders).
    pub fn class_names(&self) -> Option<Vec<String>> {
        let owned = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect();
        match self {
            Self::Mnist => Some((0..10).map(|d| d.to_string()).collect()),
            Self::FashionMnist => Some(owned(&FASHION_MNIST)),
            Self::Cifar10 => Some(owned(&CIFAR10)),
            Self::CelebA => None,
            Self::Folder(path) => {
                let root = if path.join("train").is_dir() {
                    path.join("train")
                } else {
                    path.clone()
                };
                let names = subfolders(&root);
                (names.len() >= 2).then_some(names)
            }
        }
    }
}

/// Sorted names of the visible subfolders of `dir` (none if it cannot be read).
fn subfolders(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| !n.starts_with('.') && n != "train" && n != "test")
        .collect();
    names.sort();
    names
}

/// Labels of `files` listed under `base` by their class subfolder (the first component of
/// each path below `base`) among `names`; `None` if any file is outside every class folder.
pub(crate) fn folder_labels(files: &[PathBuf], base: &Path, names: &[String]) -> Option<Vec<u8>> {
    if names.len() < 2 || names.len() > 256 {
        return None;
    }
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(base).ok()?;
            let mut parts = rel.components();
            let first = parts.next()?.as_os_str().to_str()?;
            parts.next()?; // the file itself must be below the class folder
            names.iter().position(|n| n == first).map(|i| i as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_and_folder_classes() {
        assert_eq!(DatasetSpec::Mnist.class_names().map(|v| v.len()), Some(10));
        assert_eq!(
            DatasetSpec::FashionMnist
                .class_names()
                .and_then(|v| v.get(9).cloned()),
            Some("Ankle boot".into())
        );
        assert_eq!(DatasetSpec::CelebA.class_names(), None);
        let dir = tempfile::tempdir().expect("tempdir");
        for c in ["cats", "dogs"] {
            std::fs::create_dir_all(dir.path().join(c)).expect("mkdir");
        }
        let spec = DatasetSpec::Folder(dir.path().to_path_buf());
        let names = spec.class_names().expect("two class folders");
        assert_eq!(names, vec!["cats".to_owned(), "dogs".to_owned()]);
        let files = vec![dir.path().join("dogs/a.png"), dir.path().join("cats/b.png")];
        assert_eq!(folder_labels(&files, dir.path(), &names), Some(vec![1, 0]));
        let flat = vec![dir.path().join("c.png")];
        assert_eq!(folder_labels(&flat, dir.path(), &names), None);
    }
}
