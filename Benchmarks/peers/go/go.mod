module swift-green/peers/go

go 1.19
