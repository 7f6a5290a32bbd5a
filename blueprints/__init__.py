"""HTTP only: one blueprint per audience. Views parse, call practice/, render or redirect."""
