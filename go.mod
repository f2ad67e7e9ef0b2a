module github.com/warpmesh/warp

go 1.26.8
