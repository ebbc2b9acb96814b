package policy

import "testing"

func tA(name string, op Operation) Action { return Action{Topic, name, op} }
func gA(name string, op Operation) Action { return Action{Group, name, op} }
func xA(name string, op Operation) Action { return Action{TransactionalID, name, op} }
func cA(op Operation) Action              { return Action{Cluster, ClusterName, op} }

func TestDenialCode(t *testing.T) {
	for a, want := range map[Action]int16{
		tA("t", Write): 29, gA("g", Read): 30, cA(Alter): 31, xA("x", Write): 53, {DelegationToken, "d", Describe}: 65,
	} {
		if got := a.DenialCode(); got != want {
			t.Errorf("%v: %d, want %d", a, got, want)
		}
	}
}
