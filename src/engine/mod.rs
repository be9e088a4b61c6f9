//! The python engine: parlab's experiments run by a real CPython (see README.md beside this file), and the thread
//! sampler that measures the interpreter's threads from outside (`sampler`).

pub(crate) mod sampler;
