//! How iterations run: eager, or as a CUDA graph (`--cuda-graph`). A graph runs a few
//! eager iterations on its side stream, captures the device half of the next one
//! ([`Trainer::compute`]) with that iteration's staged inputs as the static input tensors,
//! and from then on replays it after [`Trainer::stage`] wrote each iteration's inputs into
//! them. Level-ups and fade-in change tensor values (masks, bits), never shapes, so one
//! capture serves the whole run. Where a graph cannot run, the step runs eager and the log
//! says why.

use anyhow::Result;

use super::Trainer;
use super::window::StepStats;

/// The step mode a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepMode {
    /// Every iteration launched op by op.
    #[default]
    Eager,
    /// The step captured once as a CUDA graph and replayed (CUDA only; eager elsewhere).
    CudaGraph,
}

/// Eager iterations on the side stream before the capture.
#[cfg(feature = "cuda-graphs")]
const WARMUP_ITERS: u32 = 3;

/// The step engine a trainer runs.
#[derive(Default)]
pub(super) enum Engine {
    /// Op by op.
    #[default]
    Eager,
    /// Warming up before the capture.
    #[cfg(feature = "cuda-graphs")]
    Warming {
        graph: crate::native::cuda_graph::CudaGraph,
        left: u32,
    },
    /// Captured: replays on the static inputs, whose outputs the replay overwrites.
    #[cfg(feature = "cuda-graphs")]
    Replaying {
        graph: crate::native::cuda_graph::CudaGraph,
        inputs: super::step::StepInputs,
        outputs: Vec<StepStats>,
    },
}

impl Trainer {
    /// Chooses how iterations run from now on and logs the mode that will run.
    pub fn set_step_mode(&mut self, mode: StepMode) {
        self.engine = match mode {
            StepMode::Eager => {
                tracing::info!("step mode: eager");
                Engine::Eager
            }
            StepMode::CudaGraph => match self.graph_engine() {
                Ok(engine) => engine,
                Err(why) => {
                    tracing::warn!("step mode: eager ({why})");
                    Engine::Eager
                }
            },
        };
    }

    /// The mode iterations run in now (a failed capture or a refused graph is eager).
    pub fn step_mode(&self) -> StepMode {
        match self.engine {
            Engine::Eager => StepMode::Eager,
            #[cfg(feature = "cuda-graphs")]
            _ => StepMode::CudaGraph,
        }
    }

    /// Why this trainer cannot replay its step as a CUDA graph, or the warming engine.
    #[cfg(feature = "cuda-graphs")]
    fn graph_engine(&self) -> Result<Engine, String> {
        if !self.device.is_cuda() {
            return Err(format!(
                "CUDA graphs need a CUDA device, this run is on {:?}",
                self.device
            ));
        }
        if self.runs.iter().any(|r| r.cfg.reg.dropout > 0.0) {
            return Err(
                "--d-dropout draws its masks inside the step; a replayed graph would repeat them".into(),
            );
        }
        if self
            .runs
            .iter()
            .any(|r| r.cfg.tricks.hist_avg_g > 0.0 || r.cfg.tricks.hist_avg_d > 0.0)
        {
            return Err("historical averaging folds a step-dependent 1/t into its means on the host".into());
        }
        let graph = crate::native::cuda_graph::CudaGraph::new(self.device).map_err(|e| e.to_string())?;
        tracing::info!(
            warmup = WARMUP_ITERS,
            "step mode: CUDA graph (eager warm-up on a side stream, then one capture replayed)"
        );
        Ok(Engine::Warming {
            graph,
            left: WARMUP_ITERS,
        })
    }

    #[cfg(not(feature = "cuda-graphs"))]
    fn graph_engine(&self) -> Result<Engine, String> {
        Err("this build has no CUDA graph support (built without the cuda-graphs feature)".into())
    }

    /// One iteration of every run in the current mode (does not advance `self.iter`).
    pub(super) fn iteration(&mut self) -> Result<Vec<StepStats>> {
        match std::mem::take(&mut self.engine) {
            Engine::Eager => Ok(self.step()),
            #[cfg(feature = "cuda-graphs")]
            Engine::Warming { mut graph, left } => {
                let inputs = self.stage();
                if left > 0 {
                    let out = graph.warm_up(|| self.compute(&inputs))?;
                    self.engine = Engine::Warming {
                        graph,
                        left: left - 1,
                    };
                    return Ok(out);
                }
                match graph.capture(|| self.compute(&inputs)) {
                    Ok(outputs) => {
                        tracing::info!(
                            iter = self.iter + 1,
                            "CUDA graph captured; replaying it from now on"
                        );
                        self.replay(graph, inputs, outputs)
                    }
                    Err(e) => {
                        // Nothing of the captured iteration ran: run it eager.
                        tracing::warn!("CUDA graph capture failed ({e}); the step runs eager from here");
                        Ok(self.compute(&inputs))
                    }
                }
            }
            #[cfg(feature = "cuda-graphs")]
            Engine::Replaying {
                graph,
                mut inputs,
                outputs,
            } => {
                let staged = self.stage();
                inputs.copy_from(&staged);
                self.replay(graph, inputs, outputs)
            }
        }
    }

    /// Replays the captured step on `inputs` and keeps replaying from now on; this
    /// iteration's statistics (the graph's outputs, overwritten by the next replay).
    #[cfg(feature = "cuda-graphs")]
    fn replay(
        &mut self,
        graph: crate::native::cuda_graph::CudaGraph,
        inputs: super::step::StepInputs,
        outputs: Vec<StepStats>,
    ) -> Result<Vec<StepStats>> {
        graph.replay()?;
        let out = outputs.iter().map(StepStats::shallow_clone).collect();
        self.engine = Engine::Replaying {
            graph,
            inputs,
            outputs,
        };
        Ok(out)
    }
}
