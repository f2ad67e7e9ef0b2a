package zonestest_test

import (
	"fmt"

	"github.com/warpmesh/warp/zones"
	"github.com/warpmesh/warp/zones/zonestest"
)

func ExampleParse() {
	ms, err := zonestest.Parse("a:n1,n2/suspect b:n3 c:n4/failed")
	if err != nil {
		panic(err)
	}
	topo, err := zones.New("n1", ms)
	if err != nil {
		panic(err)
	}
	fmt.Println(topo.Size(), topo.Zones(), zonestest.Format(ms))
	// Output:
	// 3 [a b] a:n1,n2/suspect b:n3 c:n4/failed
}

func ExampleUniform() {
	fmt.Println(zonestest.Format(zonestest.Uniform(5, 2)))
	// Output:
	// z0:n0,n2,n4 z1:n1,n3
}
