//! What the networks are trained towards: progressive augmentation's bits and checksum
//! labels (`pa`), the adversarial losses and D's regularisers (`loss`), and when PA
//! levels up (`schedule`); Salimans et al.'s techniques (`tricks`).

pub mod loss;
pub mod pa;
pub mod schedule;
pub mod tricks;
