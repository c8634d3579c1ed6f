package ops

import (
	"slices"
	"strings"
)

// promqlWords are PromQL's keywords and modifiers, which look like
// identifiers but name no metric.
var promqlWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true,
	// aggregations, which may take their by/without list before "("
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
}

// MetricNames returns the metric names a PromQL expression selects, sorted
// and without repeats: identifiers that are not functions or aggregations
// (followed by "("), keywords, label names (inside {} or a by/without/on/
// ignoring list), durations (inside []) or strings. It is a lexer, not a
// parser: good for the dashboard's expressions, which the real Prometheus
// parses and evaluates in the tests; Prometheus 2.42 has no parse API and
// its parser module would bring the whole server into go.mod.
func MetricNames(expr string) []string {
	var names []string
	braces, brackets, labelList := 0, 0, 0
	prev := ""
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			i = j + 1
			continue
		case c == '{':
			braces++
		case c == '}':
			braces--
		case c == '[':
			brackets++
		case c == ']':
			brackets--
		case c == '(' && (prev == "by" || prev == "without" || prev == "on" || prev == "ignoring" || prev == "group_left" || prev == "group_right"):
			labelList++
		case c == ')' && labelList > 0:
			labelList--
		case c >= '0' && c <= '9':
			// a number, 1e9 and 0x1f included: never a name
			j := i + 1
			for j < len(expr) && (isIdentChar(expr[j]) || expr[j] == '.' ||
				(expr[j] == '+' || expr[j] == '-') && (expr[j-1] == 'e' || expr[j-1] == 'E')) {
				j++
			}
			prev = expr[i:j]
			i = j
			continue
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentChar(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && expr[k] == ' ' {
				k++
			}
			call := k < len(expr) && expr[k] == '('
			if braces == 0 && brackets == 0 && labelList == 0 && !call && !promqlWords[strings.ToLower(word)] {
				names = append(names, word)
			}
			prev = strings.ToLower(word)
			i = j
			continue
		}
		if c != ' ' {
			prev = string(c)
		}
		i++
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
