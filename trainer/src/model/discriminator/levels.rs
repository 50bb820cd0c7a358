//! PA levels in D: the level masks that gate the bit kernels, written in place at a
//! level-up (no rebuild, no optimiser reset; a replayed CUDA graph reads them in place).

use tch::Tensor;

use super::Discriminator;

impl Discriminator {
    /// Model `m`'s level mask of its own bit layer (image channels and live bits 1).
    pub(super) fn model_mask(&self, m: usize) -> Option<Tensor> {
        let i = self.pa_layers[m]?;
        let (l, in_c) = (self.max_level, self.in_channels[i]);
        let live = in_c + self.levels[m].clamp(0, l);
        let mask: Vec<f32> = (0..in_c + l).map(|j| if j < live { 1.0 } else { 0.0 }).collect();
        let dev = self.convs[i].weight.device();
        Some(Tensor::from_slice(&mask).to_device(dev).view([1, in_c + l, 1, 1]))
    }

    /// The level mask of bit layer `i` (input channels `in_c` before the bits): image
    /// channels and each model's live bits 1, everything else 0; shaped to multiply the
    /// layer's kernel.
    pub(super) fn layer_mask(&self, i: usize, in_c: i64) -> Tensor {
        let total = in_c + self.max_level;
        let dev = self.convs[i].weight.device();
        let rows: Vec<f32> = (0..self.models as usize)
            .flat_map(|k| {
                let live = if self.pa_layers[k] == Some(i) {
                    in_c + self.levels[k].clamp(0, self.max_level)
                } else {
                    in_c
                };
                (0..total).map(move |j| if j < live { 1.0 } else { 0.0 })
            })
            .collect();
        let m = Tensor::from_slice(&rows).to_device(dev);
        if self.models == 1 {
            return m.view([1, total, 1, 1]);
        }
        // One row of the mask per output channel: model k's rows get model k's mask.
        let out = self.convs[i].weight.size()[0] / self.models;
        m.view([self.models, 1, total])
            .expand([self.models, out, total], false)
            .reshape([self.models * out, total, 1, 1])
    }

    /// Sets how many bit channels are live (mask update only: no rebuild, no optimiser
    /// reset) for a plain discriminator, or for every model of a stack.
    pub fn set_level(&mut self, level: i64) {
        for k in 0..self.models as usize {
            self.levels[k] = level;
        }
        self.refresh_masks();
    }

    /// Sets model `k`'s live bit channels.
    pub fn set_model_level(&mut self, k: usize, level: i64) {
        self.levels[k] = level;
        self.refresh_masks();
    }

    /// Writes the masks of the current levels into the mask tensors.
    fn refresh_masks(&mut self) {
        tch::no_grad(|| {
            for (i, c, mask) in &self.masks {
                mask.shallow_clone().copy_(&self.layer_mask(*i, *c));
            }
            for (m, mask) in self.model_masks.iter().enumerate() {
                if let (Some(mask), Some(new)) = (mask, self.model_mask(m)) {
                    mask.shallow_clone().copy_(&new);
                }
            }
        });
    }

    /// The level mask of the first bit layer, if any.
    pub fn mask(&self) -> Option<&Tensor> {
        self.masks.first().map(|(_, _, m)| m)
    }
}
