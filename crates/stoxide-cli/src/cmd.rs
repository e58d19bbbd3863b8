//! One module per command.

pub(crate) mod account;
pub(crate) mod charges;
pub(crate) mod cluster;
pub(crate) mod demo;
pub(crate) mod desk;
pub(crate) mod doctor;
pub(crate) mod engine;
pub(crate) mod feed;
pub(crate) mod gtt;
pub(crate) mod instruments;
pub(crate) mod login;
pub(crate) mod market;
pub(crate) mod order;
pub(crate) mod quote;
pub(crate) mod serve;
pub(crate) mod sim;
pub(crate) mod stream;
pub(crate) mod token;
