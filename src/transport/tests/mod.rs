//! Transport tests: the conformance suite (`conformance`), run against TCP
//! on 127.0.0.1:0 and the in-memory network through the `harness`.

mod conformance;
mod harness;
