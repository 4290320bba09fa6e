import { DECORATORS } from '@nestjs/swagger';

export const IS_PUBLIC_KEY = 'virtgate:isPublic';

/**
 * Marks a controller or a route as reachable without a bearer token
 * (health checks, later metrics). Everything else requires one.
 * It also clears the OpenAPI security requirement of what it marks.
 */
export function Public(): ClassDecorator & MethodDecorator {
  return (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor): void => {
    const marked: object = descriptor ? (descriptor.value as object) : target;
    Reflect.defineMetadata(IS_PUBLIC_KEY, true, marked);
    // On a controller, `security: []` overrides the document's global bearer
    // requirement; on a method an empty array would be dropped by
    // @nestjs/swagger, so it gets `[{}]`, OpenAPI's "no credentials needed".
    Reflect.defineMetadata(DECORATORS.API_SECURITY, descriptor ? [{}] : [], marked);
  };
}
