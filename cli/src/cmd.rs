pub mod analyze;
pub mod check;
pub mod diff;
pub mod eval;
pub mod simulate;
