//! Class labels of a class-conditional generator: what a request asks for ([`ClassChoice`])
//! resolved against the model's classes (its manifest's `classes`) into one int64 label
//! per image, or refused with the reason. Unconditional models take no labels.

use pagan_shared::manifest::ClassesSpec;

/// One class named in a request: by its integer label or by name (in JSON a number is a
/// label and a string a name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassRef {
    /// A label, `0..K`.
    Label(i64),
    /// A class name (exact match).
    Name(String),
}

impl<'de> serde::Deserialize<'de> for ClassRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ClassRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a class: a class name (string) or an integer label")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ClassRef, E> {
                Ok(ClassRef::Label(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ClassRef, E> {
                // Past i64 is past every label: out of range, said as such.
                Ok(ClassRef::Label(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ClassRef, E> {
                Ok(ClassRef::Name(v.to_owned()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The classes a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClassChoice {
    /// Nothing asked: a conditional model cycles through its classes (`pagan_shared::manifest::cycle_labels`).
    #[default]
    Default,
    /// One class for every image.
    Class(ClassRef),
    /// One label per image.
    Labels(Vec<i64>),
}

/// Why a request's classes cannot be used with a model.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// `labels` or `class` for a model without classes.
    #[error("model `{0}` is not class-conditional: leave out `labels` and `class`")]
    NotConditional(String),
    /// Both `labels` and `class`.
    #[error("give `labels` (one per image) or `class` (for all images), not both")]
    Both,
    /// A class name the model does not have.
    #[error("model `{model}` has no class {name:?}; its classes are: {}", names.join(", "))]
    UnknownClass {
        /// The model.
        model: String,
        /// The name asked for.
        name: String,
        /// The model's class names in label order.
        names: Vec<String>,
    },
    /// `class` as a label outside `0..K`.
    #[error("class label {label} is out of range: model `{model}` has labels 0..={} ({})", k - 1, names.join(", "))]
    ClassOutOfRange {
        /// The model.
        model: String,
        /// The label asked for.
        label: i64,
        /// Number of classes.
        k: usize,
        /// The model's class names in label order.
        names: Vec<String>,
    },
    /// A label of `labels` outside `0..K`.
    #[error("labels[{index}] = {label} is out of range: model `{model}` has labels 0..={}", k - 1)]
    LabelOutOfRange {
        /// The model.
        model: String,
        /// Position in `labels`.
        index: usize,
        /// The label.
        label: i64,
        /// Number of classes.
        k: usize,
    },
    /// `labels` of another length than the images asked for.
    #[error("{got} labels for {n} images: give one label per image")]
    Length {
        /// Labels given.
        got: usize,
        /// Images asked for.
        n: usize,
    },
    /// `labels` that are not a comma-separated list of integers (query strings).
    #[error("labels must be integers separated by commas, got {0:?}")]
    Syntax(String),
}

impl ClassChoice {
    /// The choice of a request's `labels` and `class` fields (at most one of them).
    pub fn from_parts(labels: Option<Vec<i64>>, class: Option<ClassRef>) -> Result<Self, LabelError> {
        match (labels, class) {
            (Some(_), Some(_)) => Err(LabelError::Both),
            (Some(l), None) => Ok(Self::Labels(l)),
            (None, Some(c)) => Ok(Self::Class(c)),
            (None, None) => Ok(Self::Default),
        }
    }

    /// The number of images the choice fixes by itself (`labels`: its length).
    pub fn fixed_n(&self) -> Option<usize> {
        match self {
            Self::Labels(l) => Some(l.len()),
            _ => None,
        }
    }
}

/// A comma-separated list of integer labels (`0,3,3`), as query strings carry them.
pub fn parse_list(text: &str) -> Result<Vec<i64>, LabelError> {
    text.split(',')
        .map(|s| s.trim().parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| LabelError::Syntax(text.to_owned()))
}

/// One int64 label per image for `n` images of model `model` with `classes` (None:
/// unconditional, which takes no labels and gets None).
pub fn resolve(
    model: &str,
    classes: Option<&ClassesSpec>,
    choice: &ClassChoice,
    n: usize,
) -> Result<Option<Vec<i64>>, LabelError> {
    let Some(classes) = classes else {
        return match choice {
            ClassChoice::Default => Ok(None),
            _ => Err(LabelError::NotConditional(model.to_owned())),
        };
    };
    let k = classes.names.len();
    let labels = match choice {
        ClassChoice::Default => pagan_shared::manifest::cycle_labels(0, n, k),
        ClassChoice::Class(ClassRef::Name(name)) => {
            let label = classes.label_of(name).ok_or_else(|| LabelError::UnknownClass {
                model: model.to_owned(),
                name: name.clone(),
                names: classes.names.clone(),
            })?;
            vec![label as i64; n]
        }
        ClassChoice::Class(ClassRef::Label(label)) => {
            if !in_range(*label, k) {
                return Err(LabelError::ClassOutOfRange {
                    model: model.to_owned(),
                    label: *label,
                    k,
                    names: classes.names.clone(),
                });
            }
            vec![*label; n]
        }
        ClassChoice::Labels(labels) => {
            if labels.len() != n {
                return Err(LabelError::Length { got: labels.len(), n });
            }
            if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| !in_range(**l, k)) {
                return Err(LabelError::LabelOutOfRange {
                    model: model.to_owned(),
                    index,
                    label,
                    k,
                });
            }
            labels.clone()
        }
    };
    Ok(Some(labels))
}

fn in_range(label: i64, k: usize) -> bool {
    usize::try_from(label).is_ok_and(|l| l < k)
}

#[cfg(test)]
mod tests {
    use pagan_shared::manifest::{Dim, LABELS_INPUT, TensorSpec};

    use super::*;

    fn spec() -> ClassesSpec {
        ClassesSpec {
            input: TensorSpec {
                name: LABELS_INPUT.into(),
                shape: vec![Dim::Sym("N".into())],
            },
            names: vec!["shirt".into(), "shoe".into(), "bag".into()],
        }
    }

    #[test]
    fn choices_resolve_to_one_label_per_image() {
        let c = spec();
        let r = |choice: ClassChoice, n| resolve("m", Some(&c), &choice, n);
        assert_eq!(r(ClassChoice::Default, 5).unwrap(), Some(vec![0, 1, 2, 0, 1]));
        let shoe = ClassChoice::Class(ClassRef::Name("shoe".into()));
        assert_eq!(r(shoe, 3).unwrap(), Some(vec![1; 3]));
        let two = ClassChoice::Class(ClassRef::Label(2));
        assert_eq!(r(two, 2).unwrap(), Some(vec![2; 2]));
        let given = ClassChoice::Labels(vec![2, 0]);
        assert_eq!(r(given, 2).unwrap(), Some(vec![2, 0]));
        assert_eq!(resolve("u", None, &ClassChoice::Default, 4).unwrap(), None);
    }

    #[test]
    fn bad_choices_say_why() {
        let c = spec();
        let e = |choice: ClassChoice, n| resolve("m", Some(&c), &choice, n).unwrap_err().to_string();
        let unknown = e(ClassChoice::Class(ClassRef::Name("hat".into())), 1);
        assert!(unknown.contains("shirt, shoe, bag"), "{unknown}");
        assert!(e(ClassChoice::Class(ClassRef::Label(3)), 1).contains("0..=2"));
        assert!(e(ClassChoice::Labels(vec![0, -1]), 2).contains("labels[1] = -1"));
        assert!(e(ClassChoice::Labels(vec![0]), 2).contains("1 labels for 2 images"));
        let not = resolve("u", None, &ClassChoice::Labels(vec![0]), 1).unwrap_err();
        assert!(matches!(not, LabelError::NotConditional(_)), "{not}");
        assert!(matches!(
            ClassChoice::from_parts(Some(vec![0]), Some(ClassRef::Label(0))),
            Err(LabelError::Both)
        ));
        assert_eq!(parse_list("0, 2,1").unwrap(), vec![0, 2, 1]);
        assert!(matches!(parse_list("0,,1"), Err(LabelError::Syntax(_))));
        assert!(matches!(parse_list(""), Err(LabelError::Syntax(_))));
    }
}
