package policy

import "maps"

// Sources returns the revision in force and the content of each of its
// files (Rego modules, tests and data files) by file name, exactly the
// bytes the revision hash covers. The map is a copy.
func (e *Engine) Sources() (revision string, files map[string][]byte) {
	st := e.state.Load()
	return st.revision, maps.Clone(st.sources)
}
