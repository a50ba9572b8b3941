//! Decoding of MCG_STATUS, MCi_STATUS, the MCA error code and the Linux severity class.
