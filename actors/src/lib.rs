//! The roles of meso: master, agent, scheduler driver, executor driver.

pub mod agent;
pub mod master;
