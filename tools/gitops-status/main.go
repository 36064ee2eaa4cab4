// gitops-status computes what GitOps tools make of one Kubernetes object,
// with the libraries those tools run, so the integration tests check the
// operator's status against the real thing rather than our reading of it.
//
//	gitops-status kstatus < object.json
//	    kstatus' status.Compute (sigs.k8s.io/cli-utils/pkg/kstatus/status),
//	    what Flux's health checks, `kubectl wait`-style pollers and
//	    cli-utils' apply/destroy use.
//	gitops-status argo-health SCRIPT.lua < object.json
//	    an Argo CD custom health check (resource.customizations.health.*)
//	    run in gopher-lua, the Lua VM inside Argo CD, the way Argo CD runs it.
//
// The object is JSON or YAML on standard input. The answer is one JSON line
// on standard output, {"status": ..., "message": ...}. Exit 1 with a message
// on standard error when the input or the script is unusable.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

const usage = `usage:
  gitops-status kstatus < object.(json|yaml)
  gitops-status argo-health SCRIPT.lua < object.(json|yaml)`

// Result is what both subcommands print.
type Result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "gitops-status: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, in io.Reader, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	var result Result
	switch {
	case args[0] == "kstatus" && len(args) == 1:
		obj, err := readObject(in)
		if err != nil {
			return err
		}
		res, err := status.Compute(obj)
		if err != nil {
			return fmt.Errorf("kstatus: %w", err)
		}
		result = Result{Status: string(res.Status), Message: res.Message}
	case args[0] == "argo-health" && len(args) == 2:
		script, err := os.ReadFile(args[1])
		if err != nil {
			return fmt.Errorf("health script: %w", err)
		}
		obj, err := readObject(in)
		if err != nil {
			return err
		}
		result, err = argoHealth(obj, string(script))
		if err != nil {
			return fmt.Errorf("health script %s: %w", args[1], err)
		}
	default:
		return errors.New(usage)
	}
	return json.NewEncoder(out).Encode(result)
}

// readObject decodes one object the way client-go hands it to both tools:
// unstructured, with whole numbers as int64.
func readObject(in io.Reader) (*unstructured.Unstructured, error) {
	raw, err := io.ReadAll(in)
	if err != nil {
		return nil, fmt.Errorf("reading the object: %w", err)
	}
	// JSON is YAML, so one conversion takes either.
	data, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("the object is neither JSON nor YAML: %w", err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("the object: %w", err)
	}
	return obj, nil
}

// Argo CD's health codes (gitops-engine pkg/health/health.go); anything
// else a script returns becomes Unknown, as in Argo CD.
var healthCodes = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

// argoHealth runs a health script as Argo CD's util/lua/lua.go does for a
// script from argocd-cm (VM.runLua, VM.ExecuteHealthLua): no standard
// libraries but package, base and table (useOpenLibs is off unless the
// customization sets it), a one-second deadline, the object as the global
// `obj`, and the script's return value read from the top of the stack.
// Argo CD also loads a reduced `os` (time and date only); the harness
// leaves it out, so a script that passes here needs nothing from it.
func argoHealth(obj *unstructured.Unstructured, script string) (Result, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return Result{}, fmt.Errorf("opening the %q library: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return Result{}, err
	}
	ret := l.Get(-1)
	table, ok := ret.(*lua.LTable)
	if !ok {
		return Result{}, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	// Argo CD encodes the table as JSON into HealthStatus{status, message}:
	// both must be strings when present.
	field := func(name string) (string, error) {
		switch v := table.RawGetString(name).(type) {
		case *lua.LNilType:
			return "", nil
		case lua.LString:
			return string(v), nil
		default:
			return "", fmt.Errorf("the returned %s is a %s, not a string", name, v.Type())
		}
	}
	code, err := field("status")
	if err != nil {
		return Result{}, err
	}
	message, err := field("message")
	if err != nil {
		return Result{}, err
	}
	if !healthCodes[code] {
		return Result{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return Result{Status: code, Message: message}, nil
}

// toLua converts an unstructured value as Argo CD's decodeValue does:
// maps to tables, lists to sequences, numbers to Lua numbers.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		list := l.CreateTable(len(v), 0)
		for _, item := range v {
			list.Append(toLua(l, item))
		}
		return list
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	default:
		return lua.LNil
	}
}
