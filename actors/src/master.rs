//! The master's pure core: the offer book, accept validation and the task state machine.

pub mod book;
pub mod tasks;
pub mod validation;
