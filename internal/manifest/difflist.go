package manifest

func (w *walker) walkList(a, b []any, p fieldPath) {
	if key := listKey(a, b); key != "" {
		bi := make(map[string]any, len(b))
		for _, e := range b {
			bi[keyValue(e, key)] = e
		}
		ai := make(map[string]bool, len(a))
		for _, e := range a {
			kv := keyValue(e, key)
			ai[kv] = true
			w.walk(e, bi[kv], p.with(seg{typ: segKey, s: key + "=" + kv}))
		}
		for _, e := range b {
			if kv := keyValue(e, key); !ai[kv] {
				w.walk(nil, e, p.with(seg{typ: segKey, s: key + "=" + kv}))
			}
		}
		return
	}
	if scalars(a) && scalars(b) {
		// args, hosts, verbs...: one change with both lists reads better
		// than a cascade of shifted indexes.
		w.record(p, a, b)
		return
	}
	w.walkAligned(a, b, p)
}

// walkAligned matches the items of two lists without a key (RBAC rules,
// anyOf schemas) by a longest common subsequence of equal items, so one
// inserted rule is reported as one addition rather than as every later rule
// changing. Between two equal items, an old and a new item that share at
// least half of their fields (see similar) are taken as one item changed in
// place and compared field by field; the others are reported as whole items
// removed and added. Indexes
// count in the list that holds the item: the new list for changed and added
// items, the old one for removed items.
func (w *walker) walkAligned(a, b []any, p fieldPath) {
	n, m := len(a), len(b)
	if n*m > 1<<20 {
		w.record(p, a, b)
		return
	}
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	eq := make([][]bool, n)
	for i := n - 1; i >= 0; i-- {
		eq[i] = make([]bool, m)
		for j := m - 1; j >= 0; j-- {
			eq[i][j] = equalValue(a[i], b[j])
			if eq[i][j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var gapA, gapB []int
	flush := func() {
		pairOf := make(map[int]int, len(gapB)) // index in gapB → item of a
		next := 0
		for _, i := range gapA {
			match := -1
			for k := next; k < len(gapB); k++ {
				if similar(a[i], b[gapB[k]]) {
					match = k
					break
				}
			}
			if match < 0 {
				w.record(p.with(seg{typ: segIndex, s: itoa(i)}), a[i], nil)
				continue
			}
			pairOf[match], next = i, match+1
		}
		for k, j := range gapB {
			if i, ok := pairOf[k]; ok {
				w.walk(a[i], b[j], p.with(seg{typ: segIndex, s: itoa(j)}))
			} else {
				w.record(p.with(seg{typ: segIndex, s: itoa(j)}), nil, b[j])
			}
		}
		gapA, gapB = gapA[:0], gapB[:0]
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && eq[i][j] && lcs[i][j] == lcs[i+1][j+1]+1:
			flush()
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			gapA = append(gapA, i)
			i++
		default:
			gapB = append(gapB, j)
			j++
		}
	}
	flush()
}

// similar reports whether two list items are maps that agree on at least
// half of their keys, i.e. probably one item edited rather than two items.
func similar(a, b any) bool {
	am, ok1 := a.(map[string]any)
	bm, ok2 := b.(map[string]any)
	if !ok1 || !ok2 {
		return false
	}
	same, union := 0, len(am)
	for k, bv := range bm {
		av, ok := am[k]
		if !ok {
			union++
			continue
		}
		if equalValue(av, bv) {
			same++
		}
	}
	return union > 0 && 2*same >= union
}

// listKey returns the field that identifies every item of both lists
// uniquely, or "" when there is none (then items match by position). The
// candidates are the fields that name list items in Kubernetes objects, in
// order of preference: name (containers, env, ports, volumes, webhooks, CRD
// versions), mountPath (volumeMounts may repeat a volume name), containerPort.
func listKey(a, b []any) string {
	if len(a) == 0 && len(b) == 0 {
		return ""
	}
	for _, k := range []string{"name", "mountPath", "containerPort"} {
		if uniqueKey(a, k) && uniqueKey(b, k) {
			return k
		}
	}
	return ""
}

func uniqueKey(l []any, key string) bool {
	seen := make(map[string]bool, len(l))
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return false
		}
		switch m[key].(type) {
		case string, int64, float64, int:
		default:
			return false
		}
		kv := keyValue(e, key)
		if seen[kv] {
			return false
		}
		seen[kv] = true
	}
	return true
}

func keyValue(e any, key string) string {
	m, _ := e.(map[string]any)
	return scalarString(m[key])
}

func scalars(l []any) bool {
	for _, e := range l {
		switch e.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}
