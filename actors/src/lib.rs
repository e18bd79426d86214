//! The roles of meso: master, agent, scheduler driver, executor driver.
