//! A class-conditional D's class head: one-hot class maps as input channels, or the
//! projection of Miyato & Koyama (2018).

use tch::{Tensor, nn};

use super::Discriminator;
use crate::config::{Arch, CondConfig, DCond};
use crate::model::layers::normal_init;
use crate::model::spectral_norm::SpectralWeight;

/// How a class-conditional D takes the labels.
#[derive(Debug)]
pub enum ClassHead {
    /// One-hot class maps as extra input channels of the first conv (after the image).
    Concat {
        /// Number of classes.
        classes: i64,
    },
    /// Projection (Miyato & Koyama 2018): the logit gains `<V[y], h>`, with `h` the
    /// flattened features the final linear layer reads and `V` [classes, F] spectrally
    /// normalised like every other weight of D.
    Project(SpectralWeight),
}

impl Discriminator {
    /// A class-conditional D under `p` (one model): `cond.d` decides the class head.
    pub fn conditional(
        p: &nn::Path,
        arch: &Arch,
        pa_layer: Option<usize>,
        max_level: i64,
        level: i64,
        cond: &CondConfig,
    ) -> Self {
        let k = cond.n_classes();
        let concat = (cond.d == DCond::Concat).then_some(k);
        let mut d = Self::build(p, arch, &[pa_layer], max_level, &[level], concat.unwrap_or(0));
        d.classes = Some(match cond.d {
            DCond::Concat => ClassHead::Concat { classes: k },
            DCond::Project => {
                let f = d.fc.weight.size()[1];
                let pp = p / "proj";
                ClassHead::Project(SpectralWeight::new(&pp, pp.var("weight", &[k, f], normal_init())))
            }
        });
        d
    }

    /// The image with one-hot class maps appended, for a concat class head (else as it is).
    pub(super) fn with_class_maps(&self, x: &Tensor, labels: Option<&Tensor>) -> Tensor {
        match (&self.classes, labels) {
            (Some(ClassHead::Concat { classes }), Some(y)) => {
                let s = x.size();
                let onehot = y.onehot(*classes).to_kind(x.kind());
                let maps = onehot
                    .view([s[0], *classes, 1, 1])
                    .expand([s[0], *classes, s[2], s[3]], false);
                Tensor::cat(&[x, &maps], 1)
            }
            _ => x.shallow_clone(),
        }
    }

    /// The projection head's term `<V[y] / sigma(V), h>` [N, 1] for flattened features `h`,
    /// when D has one and labels are given.
    pub(super) fn projection(&self, flat: &Tensor, labels: Option<&Tensor>, train: bool) -> Option<Tensor> {
        match (&self.classes, labels) {
            (Some(ClassHead::Project(v)), Some(y)) => {
                let rows = v.normalized(train, None).index_select(0, y);
                Some((flat * rows).sum_dim_intlist(1, true, flat.kind()))
            }
            _ => None,
        }
    }
}
