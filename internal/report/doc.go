// Package report renders the run report of a MeshUpgrade: a compact text
// summary for the terminal and a single self-contained HTML page for people
// who were not watching the run. Both read only the MeshUpgrade status, so a
// report can be produced from a saved object long after the run, on a machine
// with no cluster access.
package report
