import JWTKit; import NorthstarPluginKit
