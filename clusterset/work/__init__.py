"""Work (KEP-6456): a member's agent applies the Works of its own hub namespace to the member, tracks what it
applied in an AppliedWork, and reports conditions and status feedback back on the Work."""
