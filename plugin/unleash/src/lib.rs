//! Unleash at the edge: the client-API payload model and its evaluation.
//! (Filled in by the Unleash issue.)
