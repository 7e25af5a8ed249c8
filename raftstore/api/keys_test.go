package api

import "testing"

func TestKeysRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want Key
	}{
		{VMKey("vm-1"), Key{Kind: KeyVM, VM: "vm-1"}},
		{CoolKey("vm-1"), Key{Kind: KeyCool, VM: "vm-1"}},
		{ReserveKey("esx01", "vm-1"), Key{Kind: KeyReserve, Host: "esx01", VM: "vm-1"}},
		{SlotPrefix("esx01") + "3", Key{Kind: KeySlot, Host: "esx01", Slot: 3}},
		{"lock/upgrade", Key{Kind: KeyLock, Name: "upgrade"}},
	} {
		got, ok := ParseKey(tc.key)
		if !ok || got != tc.want {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v", tc.key, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "vm/", "vm/a/b", "reserve/esx01", "reserve//vm", "reserve/h/", "host/h/slot/x", "host/h/slot/-1", "host//slot/1", "cool/", "lock/", "other/x"} {
		if k, ok := ParseKey(bad); ok {
			t.Errorf("ParseKey(%q) = %+v, want refused", bad, k)
		}
	}
}
