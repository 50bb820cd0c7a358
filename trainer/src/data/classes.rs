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

    /// Why this dataset's classes are not the `trained` ones (in label order), if they are
    /// not: a class folder added, removed or renamed since training shifts every label.
    pub fn class_mismatch(&self, trained: &[String]) -> Option<String> {
        let now = self.class_names().unwrap_or_default();
        (now != trained).then(|| {
            format!("the run was trained on the classes {trained:?}, and {self} now has {now:?} (labels would shift)")
        })
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
    files.iter().map(|f| label_of(f, base, names)).collect()
}

/// The label of `file` by its class folder under `base`, if it is inside one of `names`.
fn label_of(file: &Path, base: &Path, names: &[String]) -> Option<u8> {
    let rel = file.strip_prefix(base).ok()?;
    let mut parts = rel.components();
    let first = parts.next()?.as_os_str().to_str()?;
    parts.next()?; // the file itself must be below the class folder
    names.iter().position(|n| n == first).map(|i| i as u8)
}

/// The first of `files` outside every class folder of `names` under `base` (why a folder
/// with class subfolders has no labels).
pub(crate) fn first_unlabelled<'a>(
    files: &'a [PathBuf],
    base: &Path,
    names: &[String],
) -> Option<&'a PathBuf> {
    files.iter().find(|f| label_of(f, base, names).is_none())
}

/// `files` grouped by class folder, in label order; `None` unless `base` has at least two
/// class folders and every file is inside one. Each group keeps the files' order.
pub(crate) fn group_by_class(files: &[PathBuf], base: &Path) -> Option<Vec<Vec<PathBuf>>> {
    let names = subfolders(base);
    let labels = folder_labels(files, base, &names)?;
    let mut groups = vec![Vec::new(); names.len()];
    for (f, l) in files.iter().zip(labels) {
        groups[usize::from(l)].push(f.clone());
    }
    Some(groups)
}

/// At most `limit` files taken from the classes in turn (the first file of each class, then
/// the second, ...), so a limited set keeps every class; sorted by path.
pub(crate) fn limit_per_class(groups: &[Vec<PathBuf>], limit: usize) -> Vec<PathBuf> {
    let longest = groups.iter().map(Vec::len).max().unwrap_or(0);
    let mut out: Vec<PathBuf> = (0..longest)
        .flat_map(|i| groups.iter().filter_map(move |g| g.get(i)))
        .take(limit)
        .cloned()
        .collect();
    out.sort();
    out
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
        assert_eq!(first_unlabelled(&flat, dir.path(), &names), Some(&flat[0]));
        assert_eq!(first_unlabelled(&files, dir.path(), &names), None);
    }

    #[test]
    fn a_limit_takes_the_classes_in_turn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        let mut files = Vec::new();
        for (c, n) in [("a", 5), ("b", 1), ("c", 3)] {
            std::fs::create_dir_all(base.join(c)).expect("mkdir");
            files.extend((0..n).map(|i| base.join(format!("{c}/{i}.png"))));
        }
        let groups = group_by_class(&files, base).expect("three classes");
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [5, 1, 3]);
        let names = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.strip_prefix(base).expect("below").display().to_string())
                .collect()
        };
        assert_eq!(
            names(limit_per_class(&groups, 4)),
            ["a/0.png", "a/1.png", "b/0.png", "c/0.png"]
        );
        assert_eq!(names(limit_per_class(&groups, 100)).len(), 9);
        files.push(base.join("stray.png"));
        assert!(group_by_class(&files, base).is_none());
    }
}
